"""The soak: Minyi as production runs it, under load and faults — nothing lost, nothing doubled.

    python benchmarks/soak.py                # 500 citizens, three faults (the table in docs/reliability.md)
    python benchmarks/soak.py --quick        # 60 citizens, to try it out
    python benchmarks/soak.py --logs DIR     # keep every process's log in DIR

What runs, all from this checkout and all on loopback: a PostgreSQL of the soak's own, started
from the Debian binaries in a temporary directory (benchmarks/soak_postgres.py), so that it can be
restarted without touching a shared server; a Redis of the soak's own (a temporary directory, AOF with `appendfsync everysec`, so a restart keeps its
data as a production Redis would); two `minyi serve --no-workers` on different ports and one
`minyi worker`; and, inside this process, a fake WeChat API (access token, customer-service and
template messages) and a fake `http` SMS gateway.

What it does: K citizens, each a WeChat openid, walk a complete filing in safe (AES) mode; some
arrive steadily, most in a burst just before each fault, so that it strikes turns in flight. Every
push is signed and encrypted as WeChat does it and delivered as WeChat delivers it: a failed
delivery (connection refused or reset, 5xx, no answer within 5 s) is re-sent up to three times
with the same MsgId, and a share of pushes is delivered a second time to the *other* process
while or after the first runs. A citizen reads the reply (or, when the passive reply is empty,
waits for the pushed one) and answers the question it asks; after the apology or nothing at all
they send again after a pause, as a person would. The back office reads `case.submitted` from the
stream with a consumer group and walks a share of the cases through the API (accepted → replied
→ closed, each with an Idempotency-Key, some calls sent twice to both processes); closing sends a
survey SMS to the fake gateway, and the soak answers each with a signed SMS reply carrying a
rating, some delivered twice. Meanwhile, on a schedule: one server is SIGKILLed and started
again; Redis is stopped for 10 s and started again; PostgreSQL is restarted (`pg_ctl restart -m
fast`, which cuts every connection) while the servers and the worker keep running, and must
recover their pools by themselves; the worker is restarted (SIGTERM, start).

The verdict compares what citizens were told with PostgreSQL and the stream, and exits non-zero
when anything was lost or doubled or a WeChat answer took 5 s or more. Every loop is bounded:
the run ends by itself. Only processes the soak started are signalled, by their own pids; they,
the temporary directory and the database are removed on the way out, also after a failure or
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.soak_postgres import OwnPostgres  # noqa: E402
from benchmarks.wechat_webhook import (  # noqa: E402  (after the path is set)
    AES_KEY,
    APP_ID,
    TEXT_PUSH,
    TOKEN,
    free_port,
)

APP_SECRET = "soak-app-secret"
ACCESS_TOKEN = "SOAK_ACCESS_TOKEN"
API_TOKEN = "soak-api-token-" + "0" * 32
SMS_SECRET = "soak-sms-gateway-secret-0123456789"
PII_KEY = base64.urlsafe_b64encode(b"s" * 32).decode()
STREAM = "minyi:events"
GROUP = "soak-back-office"

APOLOGY = "系统暂时有点忙"  # the start of the catalog's `error.internal`
CODE = re.compile(r"XF\d{8}-[0-9A-HJKMNP-TV-Z]{6}")
DESCRIPTION = "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"
ADDRESS = "XX区幸福路12号幸福小区东门"
NAME = "张三"
# The question a reply asks, by a phrase of the catalog, and what the citizen answers to it.
# The question asked last in a reply is the one answered.
ANSWERS: tuple[tuple[str, str], ...] = (
    ("我要反映", "1"),  # the main menu (greeting, or back at the menu)
    ("要接着填吗", "1"),  # resume the form: 1 接着填
    ("请选择事项的类别", "4"),
    ("请写下事情经过", DESCRIPTION),
    ("事情发生在哪里", ADDRESS),
    ("有照片可以直接发送", "跳过"),
    ("请写下您的姓名", NAME),
    ("请留下您的手机号码", "{phone}"),
    ("没问题请回复“1”提交", "1"),
)

ANSWER_LIMIT = 5.0  # WeChat waits 5 s for the passive reply
BUDGET = 4.0  # MINYI_WECHAT_REPLY_BUDGET's default: after it, `success` and the reply pushed
RETRIES = 3  # WeChat re-sends a push it got no answer to, three times at most
MAX_MESSAGES = 40  # a citizen gives up after this many messages
PUSH_WAIT = 15.0  # how long a citizen waits for a reply that was pushed instead of passive
API_ATTEMPTS = 20
SMS_ATTEMPTS = 20


# -- processes --------------------------------------------------------------------------------------


class Service:
    """One process the soak started; signalled only through its own Popen (its own pid)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the soak, which then stops us in order
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.alive:
            self.proc.send_signal(sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 30.0) -> None:
        self.send(sig)
        if self.proc is None:
            return
        try:
            await asyncio.to_thread(self.proc.wait, grace)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait)

    def reap(self) -> None:
        """The last resort on the way out (synchronous, for `finally`)."""
        if self.proc is None or not self.alive:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def minyi_env(database_url: str, redis_url: str, wechat_api: str, sms_api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "MINYI_DATABASE_URL": database_url,
        "MINYI_REDIS_URL": redis_url,
        "MINYI_PII_KEY": PII_KEY,
        "MINYI_API_TOKEN": API_TOKEN,
        "MINYI_WECHAT_TOKEN": TOKEN,
        "MINYI_WECHAT_APP_ID": APP_ID,
        "MINYI_WECHAT_APP_SECRET": APP_SECRET,
        "MINYI_WECHAT_AES_KEY": AES_KEY,
        "MINYI_WECHAT_API_BASE": wechat_api,
        "MINYI_SMS_PROVIDER": "http",
        "MINYI_SMS_API_BASE": sms_api,
        "MINYI_SMS_WEBHOOK_SECRET": SMS_SECRET,
        "MINYI_SURVEY_QUIET_HOURS": "",  # surveys go out at once, whatever the hour
        # The soak measures faults, not the flood limit: a citizen re-sending after apologies
        # may pass the default 30 turns a minute.
        "MINYI_RATE_SENDER": "600/min",
        "MINYI_LOG_LEVEL": "INFO",
    }


# -- fakes of WeChat and the SMS gateway ------------------------------------------------------------


class FakeWeChat:
    """`cgi-bin/stable_token`, `message/custom/send`, `message/template/send`; records texts."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.texts: dict[str, list[str]] = defaultdict(list)  # openid → customer-service texts
        self.times: dict[str, list[float]] = defaultdict(list)  # … and when each came
        self.arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.templates = 0
        self.app = web.Application()
        self.app.router.add_post("/cgi-bin/stable_token", self.token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self.custom)
        self.app.router.add_post("/cgi-bin/message/template/send", self.template)

    async def token(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data.get("appid") != APP_ID or data.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        return web.json_response({"access_token": ACCESS_TOKEN, "expires_in": 7200})

    async def custom(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != ACCESS_TOKEN:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        data = json.loads(await request.read())
        openid, content = data["touser"], data["text"]["content"]
        self.texts[openid].append(content)
        self.times[openid].append(self.clock())
        self.arrived[openid].set()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def template(self, request: web.Request) -> web.Response:
        self.templates += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": self.templates})


@dataclass
class Sms:
    to: str
    text: str
    id: str
    at: float = 0.0


class FakeGateway:
    """The `http` provider's gateway: checks X-Minyi-Signature, records each SMS."""

    def __init__(self, on_sms: Callable[[Sms], None], clock: Callable[[], float]) -> None:
        self.clock = clock
        self.sent: list[Sms] = []
        self.forged = 0
        self.on_sms = on_sms
        self.app = web.Application()
        self.app.router.add_post("/send", self.send)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = hmac.new(SMS_SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Minyi-Signature", "")):
            self.forged += 1
            return web.json_response({"error": "forbidden"}, status=403)
        data = json.loads(body)
        sms = Sms(data["to"], data["text"], data["id"], self.clock())
        self.sent.append(sms)
        self.on_sms(sms)
        return web.json_response({"accepted": True}, status=202)


# -- the run's records ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP delivery of a WeChat push and how it was answered."""

    began: float  # seconds since the run started
    took: float
    outcome: str  # passive, empty (answered `success`), 5xx, error (refused/reset), timeout


@dataclass
class Citizen:
    n: int
    openid: str
    phone: str
    arrival: float
    codes: list[str] = field(default_factory=list)  # every case code they were told, in order
    messages: int = 0
    apologies: int = 0
    silences: int = 0  # no usable reply at all: nothing passive, nothing pushed in time
    confused: int = 0  # a reply the citizen could not place
    mismatched: int = 0  # two deliveries of one push answered with different replies
    read: int = 0  # pushed texts already read
    done: bool = False


@dataclass
class Fault:
    name: str
    began: float = 0.0
    ended: float = 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


# -- the soak ---------------------------------------------------------------------------------------


class Soak:
    def __init__(
        self, args: argparse.Namespace, workdir: Path, database_url: str, postgres: OwnPostgres
    ) -> None:
        self.args = args
        self.workdir = workdir
        self.database_url = database_url
        self.postgres = postgres
        self.pg_restart: dict[str, Any] = {}
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.wechat = FakeWeChat(self.now)
        self.gateway = FakeGateway(self._survey_sms, self.now)
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.services: list[Service] = []
        self.servers: list[Service] = []
        self.urls: list[str] = []
        self.worker: Service | None = None
        self.redis_server: Service | None = None
        self.citizens: list[Citizen] = []
        self.attempts: list[Attempt] = []
        self.faults: list[Fault] = []
        self.msg_ids = itertools.count(int(time.time()) * 1000)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.runners: list[web.AppRunner] = []
        self.http: aiohttp.ClientSession  # opened in run(), inside the event loop
        # The back office.
        self.entries_seen: set[str] = set()
        self.phone_of: dict[str, str] = {}
        self.walked: set[str] = set()
        self.closed: set[str] = set()
        self.walk_failures: list[str] = []
        self.api_calls = self.api_replays = 0
        # Ratings.
        self.surveys_by_case: Counter[str] = Counter()
        self.expected: dict[str, int] = {}
        self.rating_failures: list[str] = []
        self.ratings_delivered: set[str] = set()

    def now(self) -> float:
        return time.monotonic() - self.started

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def say(self, line: str) -> None:
        print(f"[{self.now():6.1f}s] {line}", file=sys.stderr, flush=True)

    # -- setting up -----------------------------------------------------------------------------

    async def start_redis(self) -> None:
        assert self.redis_server is not None
        self.redis_server.start()
        client = Redis.from_url(self.redis_url, socket_connect_timeout=1)
        try:
            for _ in range(300):
                with contextlib.suppress(RedisError, OSError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()
        raise SystemExit("soak: its Redis did not start")

    async def wait_healthy(self, url: str) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise SystemExit(f"soak: server at {url} did not start")

    async def set_up(self, logs: Path) -> None:
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir()
        self.redis_server = Service(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            dict(os.environ),
            logs / "redis.log",
        )
        self.services.append(self.redis_server)
        await self.start_redis()

        wechat_port, sms_port = free_port(), free_port()
        for app, port in ((self.wechat.app, wechat_port), (self.gateway.app, sms_port)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)
        env = minyi_env(
            self.database_url,
            self.redis_url,
            f"http://127.0.0.1:{wechat_port}",
            f"http://127.0.0.1:{sms_port}",
        )
        for i in (1, 2):
            port = free_port()
            command = [sys.executable, "-m", "bot", "serve", "--no-workers"]
            command += ["--host", "127.0.0.1", "--port", str(port)]
            server = Service(f"server {i}", command, env, logs / f"server-{i}.log")
            self.servers.append(server)
            self.services.append(server)
            self.urls.append(f"http://127.0.0.1:{port}")
            server.start()
        self.worker = Service(
            "worker", [sys.executable, "-m", "bot", "worker"], env, logs / "worker.log"
        )
        self.services.append(self.worker)
        self.worker.start()
        for url in self.urls:
            await self.wait_healthy(url)

    # -- WeChat, as WeChat sends ---------------------------------------------------------------

    def seal(self, xml: str) -> tuple[dict[str, str], bytes]:
        from wechatpy.crypto import WeChatCrypto

        ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        sealed = ElementTree.fromstring(
            WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(xml, nonce, ts)
        )
        query = {
            "signature": hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest(),
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": sealed.findtext("MsgSignature", ""),
        }
        body = (
            "<xml><ToUserName><![CDATA[gh_soak]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed.findtext('Encrypt')}]]></Encrypt></xml>"
        )
        return query, body.encode()

    @staticmethod
    def open_reply(body: str) -> str:
        """The passive reply's text as the citizen reads it; "" for `success` or an empty body."""
        from wechatpy.crypto import WeChatCrypto

        if not body.startswith("<xml>"):
            return ""
        envelope = ElementTree.fromstring(body)
        xml = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
            body,
            envelope.findtext("MsgSignature", ""),
            envelope.findtext("TimeStamp", ""),
            envelope.findtext("Nonce", ""),
        )
        return ElementTree.fromstring(xml).findtext("Content", "")

    async def deliver(self, xml: str, server: int, delay: float = 0.0) -> str | None:
        """One push as WeChat delivers it: re-sent on failure (same MsgId), each time to the
        next process. The passive reply's text, "" when answered without one, None when every
        delivery failed."""
        await asyncio.sleep(delay)
        for attempt in range(1 + RETRIES):
            query, body = self.seal(xml)
            began = self.now()
            outcome, reply = "error", None
            try:
                async with self.http.post(
                    self.urls[server] + "/wechat",
                    params=query,
                    data=body,
                    timeout=aiohttp.ClientTimeout(total=ANSWER_LIMIT),
                ) as response:
                    answer = await response.text()
                if response.status == 200:
                    reply = self.open_reply(answer)
                    outcome = "passive" if reply else "empty"
                else:
                    outcome = f"{response.status}"
            except TimeoutError:
                outcome = "timeout"
            except (aiohttp.ClientError, OSError):
                outcome = "error"
            self.attempts.append(Attempt(began, self.now() - began, outcome))
            if reply is not None:
                return reply
            server = (server + 1) % len(self.urls)
            if attempt < RETRIES and outcome != "timeout":
                await asyncio.sleep(1.0)  # WeChat's interval is not documented; a timeout is one
        return None

    async def send_message(self, citizen: Citizen, content: str) -> str | None:
        """The citizen sends one message; what they read back (None: nothing passive)."""
        xml = TEXT_PUSH.format(
            openid=citizen.openid, ts=int(time.time()), text=content, msg_id=next(self.msg_ids)
        )
        first = self.rng.randrange(len(self.urls))
        deliveries = [self.deliver(xml, first)]
        if self.rng.random() < self.args.duplicates:
            # WeChat's pattern: the same push again, to the other process, while or after the
            # first runs.
            other = (first + 1) % len(self.urls)
            deliveries.append(self.deliver(xml, other, delay=self.rng.uniform(0.0, 1.5)))
        answers = await asyncio.gather(*deliveries)
        texts = [a for a in answers if a]
        # Two answers that differ, neither the apology (after which a re-delivery is rightly
        # taken afresh), mean the message was acted on twice.
        if len({t for t in texts if APOLOGY not in t}) > 1:
            citizen.mismatched += 1
            self.say(f"{citizen.openid}: two deliveries answered differently: {texts}")
        passive = [t for t in texts if APOLOGY not in t] or texts
        return passive[0] if passive else None

    def pushed(self, citizen: Citizen) -> list[str]:
        """Customer-service messages that arrived since the citizen last looked."""
        texts = self.wechat.texts.get(citizen.openid, [])
        new, citizen.read = texts[citizen.read :], len(texts)
        self.wechat.arrived[citizen.openid].clear()
        return new

    async def wait_pushed(self, citizen: Citizen, seconds: float) -> str | None:
        deadline = time.monotonic() + seconds
        while True:
            new = self.pushed(citizen)
            if new:
                return "\n\n".join(new)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wechat.arrived[citizen.openid].wait(), remaining)

    def note_codes(self, citizen: Citizen, reply: str) -> None:
        for code in CODE.findall(reply):
            if code not in citizen.codes:
                citizen.codes.append(code)

    @staticmethod
    def answer_to(reply: str, phone: str) -> str | None:
        asked = max(((reply.rfind(q), a) for q, a in ANSWERS if q in reply), default=None)
        return asked[1].format(phone=phone) if asked else None

    async def citizen(self, citizen: Citizen) -> None:
        await asyncio.sleep(max(0.0, citizen.arrival - self.now()))
        message = "菜单"
        give_up = self.args.arrival + self.args.patience
        for _ in range(MAX_MESSAGES):
            if self.now() > give_up:
                break  # the run must end: a citizen still without a code counts as lost
            for seen in self.pushed(citizen):  # a pushed reply that came while they typed
                self.note_codes(citizen, seen)
            if citizen.codes:
                break
            citizen.messages += 1
            reply = await self.send_message(citizen, message)
            if not reply:
                reply = await self.wait_pushed(citizen, PUSH_WAIT)
            if reply:
                self.note_codes(citizen, reply)
            if citizen.codes:
                break
            if not reply or APOLOGY in reply:
                if reply:
                    citizen.apologies += 1
                else:
                    citizen.silences += 1
                await asyncio.sleep(self.rng.uniform(2.0, 4.0))  # then the same words again
                continue
            answer = self.answer_to(reply, citizen.phone)
            if answer is None:
                citizen.confused += 1
                answer = "菜单"
            message = answer
            await asyncio.sleep(self.rng.uniform(*self.args.think))
        citizen.done = True

    # -- the back office -------------------------------------------------------------------------

    async def back_office(self, stop: asyncio.Event) -> None:
        """A consumer group on the stream; walks a share of the submitted cases to closed."""
        redis = Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=2)
        try:
            while not stop.is_set():
                try:
                    with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
                    start = "0"  # first what was delivered to us and not acknowledged
                    while not stop.is_set():
                        read = await redis.xreadgroup(
                            GROUP, "soak", {STREAM: start}, count=100, block=500
                        )
                        entries = read[0][1] if read else []
                        if start == "0" and not entries:
                            start = ">"
                            continue
                        for entry_id, fields in entries:
                            self._entry({k.decode(): v.decode() for k, v in fields.items()})
                            await redis.xack(STREAM, GROUP, entry_id)
                except (RedisError, OSError):
                    await asyncio.sleep(1.0)  # Redis is down: try again, as a consumer would
        finally:
            await redis.aclose()

    def _entry(self, fields: dict[str, str]) -> None:
        if fields["id"] in self.entries_seen:
            return  # at least once: the back office deduplicates on `id`
        self.entries_seen.add(fields["id"])
        if fields["type"] != "case.submitted":
            return
        code = fields["case"]
        data = json.loads(fields["data"])
        self.phone_of[code] = (data.get("contact") or {}).get("phone", "")
        digest = int(hashlib.sha256(code.encode()).hexdigest(), 16)
        if digest % 1000 < self.args.walk * 1000 and code not in self.walked:
            self.walked.add(code)
            self.spawn(self.walk(code))

    async def walk(self, code: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        steps: list[dict[str, str]] = [
            {"type": "accepted"},
            {"type": "replied", "note": "路灯已修复，感谢您的反映。"},
            {"type": "closed"},
        ]
        for step in steps:
            key = f"soak:{code}:{step['type']}"
            first = self.rng.randrange(len(self.urls))
            calls = [self.api(code, step, key, first)]
            if self.rng.random() < self.args.api_twice:
                other = (first + 1) % len(self.urls)
                calls.append(self.api(code, step, key, other, self.rng.uniform(0.0, 1.0)))
            if not any(await asyncio.gather(*calls)):
                self.walk_failures.append(f"{code} {step['type']}")
                return
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
        self.closed.add(code)

    async def api(
        self, code: str, step: dict[str, str], key: str, server: int, delay: float = 0.0
    ) -> bool:
        await asyncio.sleep(delay)
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": key}
        for _ in range(API_ATTEMPTS):
            self.api_calls += 1
            try:
                async with self.http.post(
                    f"{self.urls[server]}/api/v1/cases/{code}/events",
                    json=step,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    await response.read()
                    if response.status == 200:
                        if response.headers.get("Idempotent-Replayed") == "true":
                            self.api_replays += 1
                        return True
                    if response.status < 500:
                        self.walk_failures.append(f"{code} {step['type']}: HTTP {response.status}")
                        return False
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            server = (server + 1) % len(self.urls)
            await asyncio.sleep(1.0)
        return False

    # -- surveys and SMS ratings -----------------------------------------------------------------

    def _survey_sms(self, sms: Sms) -> None:
        found = re.search(r"(?:尾号|事项)([0-9A-Z]{4})", sms.text)
        if "评价" not in sms.text or found is None:
            return  # a notice, not a survey
        ref = found.group(1)
        code = next(
            (c for c, p in self.phone_of.items() if p == sms.to and c.endswith(ref)),
            None,
        )
        if code is None:
            self.rating_failures.append(f"survey SMS for an unknown case: {ref}")
            return
        self.surveys_by_case[code] += 1
        if self.surveys_by_case[code] == 1:  # a person answers one survey once
            self.spawn(self.rate(code, sms.to, ref))

    async def rate(self, code: str, phone: str, ref: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        score = 1 + int(hashlib.sha256(code.encode()).hexdigest(), 16) % 3
        self.expected[code] = score
        body = json.dumps(
            {"from": phone, "text": f"{score} {ref}", "id": f"soak-{secrets.token_hex(8)}"},
            ensure_ascii=False,
        ).encode()
        first = self.rng.randrange(len(self.urls))
        sends = [self.sms_reply(body, first)]
        if self.rng.random() < self.args.sms_twice:
            other = (first + 1) % len(self.urls)
            sends.append(self.sms_reply(body, other, self.rng.uniform(0.0, 1.0)))
        if any(await asyncio.gather(*sends)):
            self.ratings_delivered.add(code)
        else:
            self.rating_failures.append(f"{code}: the gateway could not deliver the reply")

    async def sms_reply(self, body: bytes, server: int, delay: float = 0.0) -> bool:
        """The gateway pushes a reply; it re-sends until it is acknowledged."""
        await asyncio.sleep(delay)
        for _ in range(SMS_ATTEMPTS):
            # Signed with the time of this push, as the gateway does each time it sends.
            ts = str(int(time.time()))
            signature = hmac.new(
                SMS_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "X-Minyi-Timestamp": ts,
                "X-Minyi-Signature": signature,
            }
            try:
                async with self.http.post(
                    f"{self.urls[server]}/sms/http/inbound",
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    await response.read()
                    if response.status == 200:
                        return True
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            server = (server + 1) % len(self.urls)
            await asyncio.sleep(1.0)
        return False

    # -- faults ----------------------------------------------------------------------------------

    async def faults_on_schedule(self) -> None:
        await self.until(self.fault_at[0])
        fault = self.fault("SIGKILL server 1, start it again")
        server = self.servers[0]
        await server.stop(signal.SIGKILL)
        self.say(f"{fault.name}: killed")
        await asyncio.sleep(1.0)
        server.start()
        await self.wait_healthy(self.urls[0])
        fault.ended = self.now()
        self.say(f"{fault.name}: serving again")

        await self.until(self.fault_at[1])
        fault = self.fault("stop Redis 10 s, start it again")
        assert self.redis_server is not None
        await self.redis_server.stop(signal.SIGTERM)  # a clean shutdown: the AOF is flushed
        self.say(f"{fault.name}: stopped")
        await asyncio.sleep(max(0.0, fault.began + 10.0 - self.now()))
        await self.start_redis()
        fault.ended = self.now()
        self.say(f"{fault.name}: running again")

        await self.until(self.fault_at[2])
        fault = self.fault("restart PostgreSQL (pg_ctl restart -m fast)")
        pids = [server.proc.pid if server.proc else 0 for server in self.servers]
        worker_pid = self.worker.proc.pid if self.worker and self.worker.proc else 0
        down = await asyncio.to_thread(self.postgres.restart)
        self.say(f"{fault.name}: restarted in {down:.1f} s")
        ready = await self.until_ready()
        fault.ended = self.now()
        self.pg_restart = {
            "down": down,
            "ready": ready,
            "restarted": [
                s.name
                for s, pid in zip(self.servers, pids, strict=True)
                if not s.proc or s.proc.pid != pid
            ]
            + (
                ["worker"]
                if not self.worker or not self.worker.proc or self.worker.proc.pid != worker_pid
                else []
            ),
        }
        self.say(f"{fault.name}: both servers ready {ready:.1f} s after the restart began")

        await self.until(self.fault_at[3])
        fault = self.fault("restart the worker (SIGTERM, start)")
        assert self.worker is not None
        await self.worker.stop(signal.SIGTERM)
        self.worker.start()
        fault.ended = self.now()
        self.say(f"{fault.name}: started again")

    async def until_ready(self) -> float:
        """Seconds from the fault's start until every server's /readyz says 200 again: their
        pools have replaced the connections PostgreSQL cut, without a process restart."""
        began = self.faults[-1].began
        pending = set(self.urls)
        for _ in range(1200):
            for url in list(pending):
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with self.http.get(
                        url + "/readyz", timeout=aiohttp.ClientTimeout(total=3)
                    ) as response:
                        if response.status == 200:
                            pending.discard(url)
            if not pending:
                break
            await asyncio.sleep(0.1)
        return self.now() - began

    def fault(self, name: str) -> Fault:
        fault = Fault(name, began=self.now())
        self.faults.append(fault)
        return fault

    async def until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - self.now()))

    # -- the run ---------------------------------------------------------------------------------

    async def run(self, logs: Path) -> int:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2000))
        stop = asyncio.Event()
        try:
            await self.set_up(logs)
            self.started = time.monotonic()
            self.say(
                f"{len(self.urls)} servers, 1 worker, Redis on :{self.redis_port}; "
                f"{self.args.citizens} citizens arriving over {self.args.arrival:.0f} s"
            )
            self.citizens = self.arrivals()
            back_office = asyncio.ensure_future(self.back_office(stop))
            faults = asyncio.ensure_future(self.faults_on_schedule())
            progress = asyncio.ensure_future(self.progress())
            await asyncio.gather(*(self.citizen(c) for c in self.citizens))
            self.say("every citizen is done; waiting for the back office, surveys and ratings")
            await faults
            await self.settle()
            stop.set()
            await back_office
            progress.cancel()
            return await self.verdict()
        finally:
            stop.set()
            for task in list(self.tasks):
                task.cancel()
            await self.http.close()
            for service in reversed(self.services):
                with contextlib.suppress(Exception):
                    await service.stop(signal.SIGTERM, grace=20)
            for runner in self.runners:
                await runner.cleanup()

    @property
    def fault_at(self) -> tuple[float, float, float, float]:
        """When the faults strike: the server kill, the Redis stop, the PostgreSQL restart, the
        worker restart."""
        window = self.args.arrival
        return (0.15 * window, 0.35 * window, 0.6 * window, 0.85 * window)

    def arrivals(self) -> list[Citizen]:
        """Citizens and when each starts: a steady stream over the arrival window, plus a
        burst (`--burst` of them) just before each fault, so that it strikes while many turns
        are in flight — on a quiet loopback a turn takes milliseconds and a fault between two
        turns proves little."""
        count, seed = self.args.citizens, self.args.seed
        bursty = int(count * self.args.burst)
        citizens = []
        for n in range(count):
            if n < bursty:
                at = self.fault_at[n % len(self.fault_at)] - 2.0 + self.rng.uniform(0.0, 2.5)
            else:
                at = self.args.arrival * (n - bursty) / max(1, count - bursty)
            citizens.append(
                Citizen(
                    n,
                    openid=f"oSoak{seed:04d}{n:06d}",
                    phone=f"139{seed % 100:02d}{n:06d}",
                    arrival=max(0.0, at),
                )
            )
        return citizens

    async def progress(self) -> None:
        while True:
            await asyncio.sleep(15)
            done = sum(c.done for c in self.citizens)
            told = sum(bool(c.codes) for c in self.citizens)
            self.say(
                f"citizens done {done}, told a code {told}; deliveries {len(self.attempts)}; "
                f"walked {len(self.walked)}, closed {len(self.closed)}, "
                f"ratings sent {len(self.ratings_delivered)}"
            )

    async def settle(self) -> None:
        """Until the back office, surveys and ratings have caught up (bounded)."""
        deadline = time.monotonic() + self.args.settle
        engine = create_async_engine(self.database_url)
        said = 0.0
        try:
            while time.monotonic() < deadline:
                async with engine.connect() as conn:
                    cases = int(await conn.scalar(text("SELECT count(*) FROM cases")) or 0)
                    pending = (
                        await conn.execute(
                            text(
                                "SELECT topic, attempts, leased_until IS NOT NULL, last_error "
                                "FROM notifications WHERE status = 'pending'"
                            )
                        )
                    ).all()
                    unpublished = int(
                        await conn.scalar(
                            text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        )
                        or 0
                    )
                    # Acknowledged SMS replies the worker has yet to work through (it polls
                    # every 2 s: a server's commit cannot wake another process's job).
                    sms_waiting = int(
                        await conn.scalar(text("SELECT count(*) FROM sms_replies_waiting")) or 0
                    )
                submitted = len(self.phone_of)
                walks_done = (
                    len(self.closed) + len({f.split()[0] for f in self.walk_failures})
                    >= len(self.walked)
                    and not self.tasks
                )
                if (
                    submitted >= cases
                    and walks_done
                    and not pending
                    and unpublished == 0
                    and sms_waiting == 0
                    and len(self.surveys_by_case) >= len(self.closed)
                ):
                    return
                if time.monotonic() - said > 15:
                    said = time.monotonic()
                    held = Counter(
                        f"{topic} (attempts {n}, {'leased' if leased else 'waiting'}"
                        + (f", {error[:60]}" if error else "")
                        + ")"
                        for topic, n, leased, error in pending
                    )
                    self.say(
                        f"catching up: cases {cases}, seen in the stream {submitted}, "
                        f"unpublished {unpublished}, SMS replies waiting {sms_waiting}, "
                        f"notifications pending {dict(held)}"
                    )
                await asyncio.sleep(2.0)
            self.say("settling timed out; the verdict shows what is missing")
        finally:
            await engine.dispose()

    async def notifications(self) -> list[tuple[str, int, str, float]]:
        """Every notification: topic, attempts, status, seconds from queued to finished."""
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT topic, attempts, status, "
                        "extract(epoch FROM coalesce(finished_at, now()) - created_at) "
                        "FROM notifications"
                    )
                )
                return [(t, int(a), s, float(w)) for t, a, s, w in rows]
        finally:
            await engine.dispose()

    # -- the verdict -----------------------------------------------------------------------------

    async def verdict(self) -> int:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT c.code, i.external_id, c.rating_score, c.rating_channel "
                            "FROM cases c JOIN identities i ON i.id = c.identity_id"
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        redis = Redis.from_url(self.redis_url, socket_timeout=10)
        entries: list[dict[str, str]] = []
        try:
            last = "-"
            while True:
                batch = await redis.xrange(STREAM, min=last, max="+", count=1000)
                if last != "-":
                    batch = batch[1:]
                if not batch:
                    break
                for _, fields in batch:
                    entries.append({k.decode(): v.decode() for k, v in fields.items()})
                last = batch[-1][0].decode()
        finally:
            await redis.aclose()

        jobs = await self.notifications()
        cases_of: dict[str, list[str]] = defaultdict(list)
        rating_of: dict[str, tuple[int | None, str | None]] = {}
        for code, openid, score, channel in rows:
            cases_of[openid].append(code)
            rating_of[code] = (score, channel)
        ids = Counter(e["id"] for e in entries)
        submitted = Counter(e["case"] for e in entries if e["type"] == "case.submitted")
        rated = Counter(e["case"] for e in entries if e["type"] == "case.rated")

        citizens = self.citizens
        told = [c for c in citizens if c.codes]
        lost_pg = [code for c in citizens for code in c.codes if code not in rating_of]
        lost_stream = [code for c in citizens for code in c.codes if code not in submitted]
        never = [c for c in citizens if not c.codes]
        unstreamed = [code for code in rating_of if code not in submitted]
        recorded = {
            code: score
            for code, (score, channel) in rating_of.items()
            if score is not None and channel == "sms"
        }
        wrong = [c for c, s in self.expected.items() if recorded.get(c) != s]
        unrated = [c for c, s in self.expected.items() if c not in recorded]
        no_survey = [c for c in self.closed if c not in self.surveys_by_case]
        rated_missing = [c for c in self.expected if c not in rated]

        two_cases = [o for o, codes in cases_of.items() if len(codes) > 1]
        two_codes = [c for c in citizens if len(c.codes) > 1]
        ids_twice = [i for i, n in ids.items() if n > 1]
        submitted_twice = [c for c, n in submitted.items() if n > 1]
        rated_twice = [c for c, n in rated.items() if n > 1]
        surveys_twice = [c for c, n in self.surveys_by_case.items() if n > 1]
        sms_ids_twice = [i for i, n in Counter(s.id for s in self.gateway.sent).items() if n > 1]
        notices_twice = self.notices_twice()
        sms_twice = [
            f"{s.id} at {s.at:.0f} s: {s.text[:20]}…"
            for s in self.gateway.sent
            if s.id in set(sms_ids_twice)
        ]

        lost = {
            "told a code that is not in PostgreSQL": len(lost_pg),
            "told a code that is not in the stream": len(lost_stream),
            "citizens never told a code": len(never),
            "cases in PostgreSQL without `case.submitted`": len(unstreamed),
            "closed cases without a survey SMS": len(no_survey),
            "ratings sent but not recorded, or recorded wrong": len(set(unrated) | set(wrong)),
            "ratings without `case.rated`": len(rated_missing),
            "walks the API did not complete": len(self.walk_failures),
            "rating replies the gateway could not deliver": len(self.rating_failures),
            "notifications never sent (failed, or still pending)": sum(
                s not in ("sent", "skipped") for _, _, s, _ in jobs
            ),
        }
        doubled = {
            "citizens with two cases": len(two_cases),
            "citizens told two codes": len(two_codes),
            "stream entry ids twice": len(ids_twice),
            "`case.submitted` twice for a case": len(submitted_twice),
            "`case.rated` twice for a case": len(rated_twice),
            "survey SMS twice for a case": len(surveys_twice),
            "SMS (gateway id) twice": len(sms_ids_twice),
            "case notices twice (WeChat)": len(notices_twice),
            "two deliveries of one push answered differently": sum(c.mismatched for c in citizens),
        }
        slowest = max((w for _, _, s, w in jobs if s == "sent"), default=0.0)
        answered = [a for a in self.attempts if a.outcome not in ("error", "timeout")]
        longest = max((a.took for a in answered), default=0.0)
        outcomes = Counter(a.outcome for a in self.attempts)
        over_budget = sum(a.took >= BUDGET for a in answered)
        slow = sum(a.took >= ANSWER_LIMIT for a in answered) + sum(
            a.outcome == "timeout" for a in self.attempts
        )

        print()
        print(f"Soak: {len(citizens)} citizens, {os.cpu_count()} CPUs, {self.now():.0f} s\n")
        print("| measure | value |")
        print("|---|---:|")
        rows_out = [
            ("citizens started", len(citizens)),
            ("citizens told a case code", len(told)),
            ("cases in PostgreSQL", len(rating_of)),
            ("`case.submitted` entries in the stream", sum(submitted.values())),
            ("stream entries in all", len(entries)),
            ("cases walked by the back office (accepted → replied → closed)", len(self.walked)),
            ("API calls (replayed by Idempotency-Key)", f"{self.api_calls} ({self.api_replays})"),
            ("survey SMS received by the gateway", sum(self.surveys_by_case.values())),
            (
                "ratings expected / recorded / `case.rated` in the stream",
                f"{len(self.expected)} / {len(recorded)} / {sum(rated.values())}",
            ),
            ("messages citizens sent", sum(c.messages for c in citizens)),
            ("WeChat deliveries (with duplicates and re-sends)", len(self.attempts)),
            ("apologies read / no usable reply", self.apologies_and_silences()),
            ("replies a citizen could not place", sum(c.confused for c in citizens)),
            (
                "notifications queued / sent / retried / not sent",
                f"{len(jobs)} / {sum(s == 'sent' for _, _, s, _ in jobs)} / "
                f"{sum(a > 1 for _, a, _, _ in jobs)} / "
                f"{sum(s not in ('sent', 'skipped') for _, _, s, _ in jobs)}",
            ),
            ("longest wait of a notification (queued → sent)", f"{slowest:.1f} s"),
            (
                "WeChat deliveries answered with a reply / `success` / failed",
                f"{outcomes['passive']} / {outcomes['empty']} / "
                f"{len(self.attempts) - outcomes['passive'] - outcomes['empty']} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()) if k not in ('passive', 'empty')) or 'none'})",
            ),
            ("answers after the 4 s budget (`success`, the reply pushed)", over_budget),
            ("longest WeChat answer", f"{longest:.2f} s"),
            ("answers at or over 5 s (timeouts included)", slow),
            (
                "PostgreSQL restart: down / every server ready again / processes restarted",
                f"{self.pg_restart.get('down', 0):.1f} s / {self.pg_restart.get('ready', 0):.1f} s"
                f" / {', '.join(self.pg_restart.get('restarted', [])) or 'none'}",
            ),
        ]
        for name, value in rows_out:
            print(f"| {name} | {value} |")
        print(f"| **lost** | **{sum(lost.values())}** |")
        for name, value in lost.items():
            print(f"| &nbsp;&nbsp;{name} | {value} |")
        print(f"| **doubled** | **{sum(doubled.values())}** |")
        for name, value in doubled.items():
            print(f"| &nbsp;&nbsp;{name} | {value} |")
        print()
        print(self.phases())
        for label, items in (
            ("lost (PostgreSQL)", lost_pg),
            ("lost (stream)", lost_stream),
            ("never told", [c.openid for c in never]),
            ("unstreamed", unstreamed),
            ("no survey", no_survey),
            ("unrated", unrated),
            ("wrong rating", wrong),
            ("case.rated missing", rated_missing),
            ("walk failures", self.walk_failures),
            ("rating failures", self.rating_failures),
            ("two cases", two_cases),
            ("ids twice", ids_twice),
            ("survey SMS twice", surveys_twice),
            ("notices twice", notices_twice),
            ("SMS twice", sms_twice),
        ):
            if items:
                print(f"{label}: {', '.join(map(str, items[:10]))}", file=sys.stderr)
        restarted = len(self.pg_restart.get("restarted", [])) if self.pg_restart else 1
        failed = sum(lost.values()) + sum(doubled.values()) + slow + restarted
        print(
            "\nverdict: "
            + (
                "PASS: nothing lost, nothing doubled, every answer within 5 s, "
                "PostgreSQL restarted under the running processes"
                if not failed
                else "FAIL"
            )
        )
        return 0 if not failed else 1

    def apologies_and_silences(self) -> str:
        return (
            f"{sum(c.apologies for c in self.citizens)} / {sum(c.silences for c in self.citizens)}"
        )

    def notices_twice(self) -> list[str]:
        """Case notices (accepted, replied, closed, the survey question) pushed more than once."""
        twice = []
        for openid, texts in self.wechat.texts.items():
            when: dict[str, list[float]] = defaultdict(list)
            for t, at in zip(texts, self.wechat.times[openid], strict=True):
                if CODE.search(t) and "提交成功" not in t:
                    when[t].append(at)
            for t, times in when.items():
                if len(times) > 1:
                    moments = ", ".join(f"{x:.0f}" for x in times)
                    twice.append(f"{openid} at {moments} s: {t[:30]}…")
        return twice

    def phases(self) -> str:
        window = self.args.window
        lines = [
            "| fault | phase | seconds | deliveries/s | p50 ms | p99 ms | max ms | failed |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for fault in self.faults:
            for phase, start, end in (
                ("before", fault.began - window, fault.began),
                ("during", fault.began, max(fault.ended, fault.began + 1.0)),
                ("after", max(fault.ended, fault.began + 1.0), fault.ended + window),
            ):
                inside = [a for a in self.attempts if start <= a.began < end]
                ok = [a.took * 1000 for a in inside if a.outcome in ("passive", "empty")]
                failed = len(inside) - len(ok)
                rate = len(ok) / (end - start) if end > start else 0.0
                lines.append(
                    f"| {fault.name} | {phase} | {start:.0f}–{end:.0f} | {rate:.1f} "
                    f"| {statistics.median(ok) if ok else 0:.0f} | {percentile(ok, 0.99):.0f} "
                    f"| {max(ok, default=0):.0f} | {failed} |"
                )
        whole = [a.took * 1000 for a in self.attempts if a.outcome in ("passive", "empty")]
        lines.append(
            f"| whole run | | 0–{self.now():.0f} | {len(whole) / max(self.now(), 1):.1f} "
            f"| {statistics.median(whole) if whole else 0:.0f} | {percentile(whole, 0.99):.0f} "
            f"| {max(whole, default=0):.0f} | {len(self.attempts) - len(whole)} |"
        )
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument(
        "--arrival", type=float, default=120.0, help="seconds over which citizens start"
    )
    parser.add_argument("--quick", action="store_true", help="60 citizens over 45 s")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of pushes sent twice")
    parser.add_argument("--walk", type=float, default=0.5, help="share of cases walked to closed")
    parser.add_argument(
        "--api-twice", type=float, default=0.2, help="share of API calls sent twice"
    )
    parser.add_argument("--sms-twice", type=float, default=0.25, help="share of SMS replies twice")
    parser.add_argument(
        "--think", type=float, nargs=2, default=(0.05, 0.5), help="pause between messages (s)"
    )
    parser.add_argument(
        "--burst", type=float, default=0.6, help="share of citizens arriving just before faults"
    )
    parser.add_argument("--window", type=float, default=15.0, help="seconds before/after a fault")
    parser.add_argument(
        "--patience",
        type=float,
        default=300.0,
        help="seconds after the arrival window when citizens still without a code give up",
    )
    parser.add_argument("--settle", type=float, default=300.0, help="most seconds to catch up")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 10000)
    parser.add_argument("--logs", type=Path, help="keep every process's log in this directory")
    args = parser.parse_args()
    if args.quick:
        args.citizens, args.arrival, args.window = 60, 45.0, 8.0

    # Ctrl-C and SIGTERM unwind through every `finally` below: processes, database, directory.
    signal.signal(signal.SIGTERM, _interrupt)
    code = 1
    with tempfile.TemporaryDirectory(prefix="minyi-soak-") as tmp:
        logs = args.logs or Path(tmp) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            with OwnPostgres() as postgres:
                env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
                env |= {
                    "PYTHONPATH": str(ROOT),
                    "MINYI_DATABASE_URL": postgres.url,
                    "MINYI_PII_KEY": PII_KEY,
                }
                subprocess.run(
                    [sys.executable, "-m", "bot", "db", "upgrade"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                soak = Soak(args, Path(tmp), postgres.url, postgres)
                try:
                    code = asyncio.run(soak.run(logs))
                finally:
                    for service in soak.services:  # before the database is dropped
                        service.reap()
        except KeyboardInterrupt:
            print("soak: interrupted; cleaned up", file=sys.stderr)
            code = 130
    sys.exit(code)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
