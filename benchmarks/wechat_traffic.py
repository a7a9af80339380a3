"""WeChat traffic as it comes: thousands of distinct citizens in safe (AES) mode, at every step.

    python benchmarks/wechat_traffic.py                  # echo, SQLite, PostgreSQL + Redis
    python benchmarks/wechat_traffic.py --runs 3         # the same, three times (the spread)
    python benchmarks/wechat_traffic.py --servers echo,postgres --processes 1,2
    python benchmarks/wechat_traffic.py --floor storage  # the turn without its steps

4,000 citizens (--citizens) walk the whole filing walk — 我要反映, a category, the description,
the address, 跳过 photos, name, mobile, 1 to submit, 菜单, 进度查询 — in waves of 200 (--wave):
the wave's citizens all send their first message, then all their second, and so on, so that a
citizen's next message comes about 200 requests after the previous one and never two at once.
That sends 200 pushes in a row at each step (200 submits together); `--mixed` sets the wave's
citizens off a step apart instead, so that (after the first 2,000 pushes, in the warm-up) every
200 pushes hold each step equally, as citizens who came at different times do.
Every push is signed and encrypted beforehand with wechatpy exactly as WeChat's servers do, and
replayed by wrk (one thread, a Lua script keeping the file's order) over 64 connections
(--connections): a warm-up (3 s), then the measured run (10 s) on pushes not yet sent.

Each server gets a fresh database and Redis prefix. Before the load one citizen walks the walk
with the replies decrypted and checked (the category prompt, 提交成功 with a case code, their
case in 进度查询); after it, the cases in the database are counted against the submits sent.
The baseline is a bare aiohttp + wechatpy server that verifies, decrypts, parses and echoes the
text back encrypted, run in the same invocation: the machine is shared, so read the ratios.

Needs wrk (`apt-get install wrk`), PostgreSQL at MINYI_BENCH_POSTGRES_URL and Redis at
MINYI_BENCH_REDIS_URL (defaults: the local `test` database and redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from throwaway import database  # noqa: E402

TOKEN = "benchToken0123456789"  # 16-32 letters and digits, as WeChat (and Minyi) want
APP_ID = "wxbench0000000000"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PII_KEY = base64.urlsafe_b64encode(b"t" * 32).decode()
REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
WALK = (
    "我要反映",
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "XX区幸福路12号幸福小区东门",
    "跳过",
    "张三",
    "139{n:08d}",  # each citizen their own mobile, as in life
    "1",
    "菜单",
    "进度查询",
)
SUBMIT = WALK.index("1")
# WeChat stamps a push (CreateTime, the signed timestamp) when it sends it; these are sealed
# before the run, up to a minute before they are sent. Minyi takes a push stamped 4 s ago or
# more for a possible re-send and reads its delivery claim (a Redis round trip no first
# delivery makes in life), so they are stamped this far ahead — within the 600 s skew allowed.
STAMP_AHEAD = 120.0
# What one checked walk must read back, step by step (a substring of the decrypted reply).
EXPECTED = {0: "类别", 1: "事情经过", 3: "照片", 6: "手机", 7: "提交成功", 9: "您反映的事项"}
TEXT_PUSH = (
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
    "<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
    "<MsgId>{msg_id}</MsgId></xml>"
)
SERVERS = ("echo", "sqlite", "postgres")
LABELS = {
    "echo": "bare aiohttp + wechatpy AES echo",
    "sqlite": "Minyi, embedded SQLite",
    "postgres": "Minyi, PostgreSQL + Redis",
}
CHECKER = "ocheck"  # the checked walk's openids: served in full under --floor
FLOORS = {"shell": "shell only", "storage": "no steps"}


def label(kind: str, floor: str = "") -> str:
    return f"{LABELS[kind]} ({FLOORS[floor]})" if floor and kind != "echo" else LABELS[kind]


# -- the pushes ----------------------------------------------------------------------------------


class Sealer:
    """Signs and encrypts a text push as WeChat does, with its own nonces."""

    def __init__(self, ahead: float = 0.0) -> None:
        """`ahead`: seconds added to the time stamped on each push (see STAMP_AHEAD)."""
        from wechatpy.crypto import WeChatCrypto

        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
        self.msg_ids = secrets.randbelow(10**12) * 10**6
        self.ahead = ahead

    def push(self, openid: str, text: str) -> tuple[str, str]:
        """The request's path with its query, and its body."""
        ts, nonce = str(int(time.time() + self.ahead)), str(secrets.randbelow(10**9))
        self.msg_ids += 1
        xml = TEXT_PUSH.format(openid=openid, ts=ts, text=text, msg_id=self.msg_ids)
        sealed = ElementTree.fromstring(self.crypto.encrypt_message(xml, nonce, ts))
        query = {
            "signature": hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest(),
            "timestamp": ts,
            "nonce": nonce,
            "openid": openid,
            "encrypt_type": "aes",
            "msg_signature": sealed.findtext("MsgSignature", ""),
        }
        body = (
            "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed.findtext('Encrypt')}]]></Encrypt></xml>"
        )
        return "/wechat?" + urlencode(query), body

    def reply_text(self, body: str, query: str) -> str:
        """The text of a sealed passive reply."""
        from wechatpy import parse_message

        fields = dict(part.split("=", 1) for part in query.split("?", 1)[1].split("&"))
        root = ElementTree.fromstring(body)
        plain = self.crypto.decrypt_message(
            body,
            root.findtext("MsgSignature", ""),
            root.findtext("TimeStamp", ""),
            root.findtext("Nonce", fields["nonce"]),
        )
        return str(getattr(parse_message(plain), "content", ""))


def write_pushes(
    path: Path, citizens: int, wave: int, run: str, mixed: bool = False
) -> list[tuple[int, str]]:
    """Every citizen's walk in waves, in the order sent; returns each line's step and openid."""
    sealer = Sealer(ahead=STAMP_AHEAD)
    steps: list[tuple[int, str]] = []
    with path.open("w") as out:
        for step, n in (walked_mixed if mixed else walked_phased)(citizens, wave):
            openid = f"o{run}{n:06d}"
            target, body = sealer.push(openid, WALK[step].format(n=n))
            out.write(f"{target}\t{body}\n")
            steps.append((step, openid))
    return steps


def walked_phased(citizens: int, wave: int) -> Iterator[tuple[int, int]]:
    """(step, citizen): the wave's citizens all send their first message, then all their second
    — `wave` pushes in a row at the same step (200 submits together)."""
    for first in range(0, citizens, wave):
        members = range(first, min(first + wave, citizens))
        for step in range(len(WALK)):
            for n in members:
                yield step, n


def walked_mixed(citizens: int, wave: int) -> Iterator[tuple[int, int]]:
    """(step, citizen): `wave` lanes, each walking its citizens one after another, the lanes a
    step apart — once all have set off (the walk's length of waves), every `wave` pushes hold
    each step equally, and a citizen's next message still comes `wave` pushes later. A lane set
    a few steps ahead starts with a citizen who sends that many messages of the walk and leaves
    (numbered after the others), as some do."""
    lanes = min(wave, citizens)
    walks = []
    for lane in range(lanes):
        ahead = lane * len(WALK) // lanes
        leaving = [(step, citizens + lane) for step in range(ahead)]
        walks.append(
            leaving + [(step, n) for n in range(lane, citizens, wave) for step in range(len(WALK))]
        )
    for turn in range(min(len(walk) for walk in walks)):  # full rounds only: the last
        for walk in walks:  # citizens of the lanes set ahead leave part way too
            yield walk[turn]


async def checked_walk(url: str, echo: bool) -> None:
    """One citizen's walk with every reply decrypted: the server must answer what it should."""
    sealer = Sealer()
    openid = f"{CHECKER}{secrets.token_hex(4)}"
    async with aiohttp.ClientSession() as http:
        for step, text in enumerate(WALK):
            target, body = sealer.push(openid, text.format(n=99_999_999))
            async with http.post(url + target, data=body.encode()) as response:
                sealed = await response.text()
                if response.status != 200 or "<Encrypt>" not in sealed:
                    raise SystemExit(f"step {step} ({text}): {response.status} {sealed[:200]!r}")
            reply = sealer.reply_text(sealed, target)
            want = text.format(n=99_999_999) if echo else EXPECTED.get(step, "")
            if want not in reply:
                raise SystemExit(f"step {step} ({text}): {want!r} not in the reply {reply!r}")
            if step == SUBMIT and not echo and not re.search(r"XF\d{8}-\w{6}", reply):
                raise SystemExit(f"no case code in the submit's reply {reply!r}")


# -- the WeChat API, faked: where replies over the budget (or shed) are pushed -----------------


class FakeApi:
    """`cgi-bin/stable_token` and `cgi-bin/message/custom/send`, counting every push."""

    def __init__(self) -> None:
        self.pushes: list[tuple[float, str, str]] = []  # when, openid, text
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeApi]:
        from aiohttp import web

        async def token(request: web.Request) -> web.Response:
            return web.json_response({"access_token": "bench-token", "expires_in": 7200})

        async def send(request: web.Request) -> web.Response:
            body = await request.json()
            self.pushes.append((time.perf_counter(), body["touser"], body["text"]["content"]))
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", token)
        app.router.add_post("/cgi-bin/message/custom/send", send)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()

    async def settled(self, quiet: float = 2.0, limit: float = 120.0) -> float:
        """Waits until no push came for `quiet` seconds; the time of the last push."""
        started = time.perf_counter()
        while time.perf_counter() - started < limit:
            last = self.pushes[-1][0] if self.pushes else started
            if time.perf_counter() - last >= quiet:
                return last
            await asyncio.sleep(0.25)
        return self.pushes[-1][0] if self.pushes else started


# -- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    kind: str
    processes: int
    database_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
        environment |= {"PYTHONPATH": str(ROOT), "MINYI_LOG_LEVEL": "WARNING", **self.env}
        if self.kind == "echo":
            command = [sys.executable, str(BENCH / "wechat_webhook.py"), "--echo-port", str(port)]
        else:
            command = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1"]
            command += ["--port", str(port)]
            if self.processes > 1:
                command += ["--processes", str(self.processes)]
        # A file, not a pipe: a full pipe would stall the server.
        with tempfile.TemporaryFile() as log:
            proc = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=environment, stdout=log, stderr=log
            )
            url = f"http://127.0.0.1:{port}"
            self.pid = proc.pid
            try:
                await wait_healthy(url, proc)
                yield url
            finally:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                log.seek(0)
                lines = log.read().decode(errors="replace").splitlines()
                errors = [line for line in lines if "Traceback" in line or "ERROR" in line]
                if errors:
                    print(f"  ({len(errors)} error lines from the server; first: {errors[0]})")


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise SystemExit(f"server at {url} did not start")


@contextlib.asynccontextmanager
async def backend(kind: str, api: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A fresh database (and Redis prefix) for one server, dropped afterwards."""
    env = {
        "MINYI_WECHAT_TOKEN": TOKEN,
        "MINYI_WECHAT_APP_ID": APP_ID,
        "MINYI_WECHAT_AES_KEY": AES_KEY,
        "MINYI_WECHAT_APP_SECRET": "bench-secret",
        "MINYI_WECHAT_API_BASE": api,  # the fake in this process: nothing leaves the machine
        "MINYI_PII_KEY": PII_KEY,
        # The load replays citizens faster than any person types: no per-sender limit here.
        "MINYI_RATE_SENDER": "100000/min",
    }
    if kind == "echo":
        yield "", env
        return
    async with database("sqlite" if kind == "sqlite" else "postgres") as url:
        env["MINYI_DATABASE_URL"] = url
        if kind == "sqlite":
            yield url, env
            return
        from redis.asyncio import Redis

        prefix = f"minyi-bench:{secrets.token_hex(4)}:"
        env |= {
            "MINYI_REDIS_URL": REDIS_URL,
            "MINYI_REDIS_PREFIX": prefix,
            "MINYI_STREAM": prefix + "events",
        }
        try:
            yield url, env
        finally:
            redis = Redis.from_url(REDIS_URL)
            async for key in redis.scan_iter(match=prefix + "*", count=1000):
                await redis.delete(key)
            await redis.aclose()


async def filers(database_url: str) -> set[str]:
    """The openids that have a case."""
    from sqlalchemy import text

    from storage.db import Database

    db = Database(database_url)
    query = text(
        "SELECT DISTINCT identities.external_id FROM cases "
        "JOIN identities ON identities.id = cases.identity_id"
    )
    try:
        async with db.engine.connect() as conn:
            return {str(openid) for openid in (await conn.execute(query)).scalars()}
    finally:
        await db.dispose()


# -- wrk ---------------------------------------------------------------------------------------------


async def wrk(
    url: str, pushes: Path, start: int, seconds: float, connections: int
) -> dict[str, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    command += ["-s", str(BENCH / "wechat_traffic.lua"), url, "--", str(pushes), str(start)]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    report = {}
    for line in out.decode().splitlines():
        if line.startswith("report "):
            _, name, value = line.split()
            report[name] = int(float(value))
    if proc.returncode or "sent" not in report:
        raise SystemExit(f"wrk failed: {err.decode()}{out.decode()}")
    return report


async def profile(pid: int, kind: str, args: argparse.Namespace) -> asyncio.subprocess.Process:
    """py-spy samples the server (and its children) through the measured run: collapsed stacks
    in --profile's folder, one file per server, for `py-spy`'s flame graphs or a quick sort."""
    folder = Path(args.profile)
    command = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    command += ["--duration", str(int(args.seconds)), "--rate", "200", "--nonblocking"]
    command += ["-o", str(folder / f"{kind}.txt")]
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


@dataclass
class Row:
    kind: str
    processes: int
    rate: float  # turns answered a second (200s), measured part only
    p50: float  # ms
    p99: float
    max: float
    silent: int  # answered `success` (over the budget, or shed) in the measured part
    failed: int
    filed: int  # of the citizens who sent 1 to submit, those with a case after the run
    submits: int  # citizens who sent 1 to submit, warm-up included
    done_rate: float = 0.0  # replies given (passive or pushed) a second, until the last push
    drained: float = 0.0  # seconds after the load stopped until the last reply was pushed
    lost: int = 0  # answered `success` but never pushed (warm-up included)
    doubled: int = 0  # the same reply pushed to the same citizen twice
    cpu_ms: float = 0.0  # the server's CPU (every process of it) per turn answered, measured part
    floor: str = ""  # --floor: what the turn was cut down to (benchmarks/floor)


def server_cpu(pid: int) -> float:
    """CPU seconds the server's processes have used (Linux /proc; 0 elsewhere): per turn it
    is steadier than turns/s on a shared machine, where other work takes the cores but not
    this process's CPU time."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


async def measure(kind: str, processes: int, args: argparse.Namespace, workdir: Path) -> Row:
    async with FakeApi().running() as api, backend(kind, api.url) as (database_url, env):
        env |= dict(setting.split("=", 1) for setting in args.set)
        if args.floor and kind != "echo":
            env["PYTHONPATH"] = os.pathsep.join([str(BENCH / "floor"), str(ROOT)])
            env |= {"BENCH_FLOOR": args.floor, "BENCH_FLOOR_CHECKER": CHECKER}
        server = Server(kind, processes, database_url, env)
        async with server.running() as url:
            await checked_walk(url, echo=kind == "echo")
            pushes = workdir / f"{kind}.tsv"
            citizens = args.echo_citizens if kind == "echo" else args.citizens
            steps = await asyncio.to_thread(
                write_pushes, pushes, citizens, args.wave, secrets.token_hex(3), args.mixed
            )
            warm = await wrk(url, pushes, 0, args.warmup, args.connections)
            profiler = await profile(server.pid, kind, args) if args.profile else None
            # When the warm-up stopped, wrk may have taken a push per connection without sending
            # it, and a citizen missing a step walks off the path: the measured run sends those
            # last pushes again. Any that did arrive are answered from the dedupe, as WeChat's
            # retries are.
            again = max(0, warm["sent"] - args.connections)
            cpu = server_cpu(server.pid)
            hot = await wrk(url, pushes, again, args.seconds, args.connections)
            cpu = server_cpu(server.pid) - cpu
            answered = hot["answered"] + hot["silent"]
            seconds = hot["duration_us"] / 1e6
            stopped = time.perf_counter()
            if profiler is not None:
                await profiler.wait()
            if hot["exhausted"]:
                print(f"  {kind}: ran out of pushes; raise --citizens")
            await asyncio.sleep(5)  # the turns still in flight when wrk stopped
            last_push = await api.settled()
            drained = max(0.0, last_push - stopped) if api.pushes else 0.0
            submitted = {openid for step, openid in steps[: hot["sent"]] if step == SUBMIT}
            have = await filers(database_url) if database_url else set()
            missing = submitted - have
            if database_url and missing and not args.floor:  # a floor files no case
                last = [o for step, o in steps[: hot["sent"]] if step == SUBMIT][-64:]
                # A citizen's next push follows the last by about a wave of pushes, sent
                # without waiting for its answer: when answers take nearly that long, a push
                # held behind a slow one on its connection can reach the server after the
                # citizen's next, and the "1" then meets another step (docs/wechat.md, ninth
                # round). Not a lost case; the figures below say whether it could be that.
                gap_ms = args.wave * seconds / answered * 1000 if answered else float("inf")
                print(
                    f"  {kind}: {len(missing)} citizens sent 1 to submit and have no case; "
                    f"{len(missing & set(last))} of them among the last 64 submits sent; "
                    f"slowest answer {hot['max_us'] / 1000:.0f} ms, a citizen's pushes "
                    f"~{gap_ms:.0f} ms apart"
                    + (" (close enough to overtake)" if hot["max_us"] / 1000 > gap_ms / 2 else "")
                )
        replies = {(openid, text) for _, openid, text in api.pushes}
        counted = Counter((openid, text) for _, openid, text in api.pushes)
        for (openid, text), times in counted.items():
            if times > 1:
                print(f"  pushed {times} times to {openid}: {text[:60]!r}")
                if os.environ.get("MINYI_BENCH_DEBUG"):
                    for _, o, t in api.pushes:
                        if o == openid:
                            print("     ", repr(t[:50]))
        row = Row(
            kind=kind,
            processes=processes,
            rate=answered / (hot["duration_us"] / 1e6),
            p50=hot["p50_us"] / 1000,
            p99=hot["p99_us"] / 1000,
            max=hot["max_us"] / 1000,
            silent=hot["silent"],
            failed=hot["failed"] + hot["socket_errors"],
            filed=len(submitted & have),
            submits=len(submitted),
            done_rate=answered / (seconds + drained),
            drained=drained,
            lost=max(0, warm["silent"] + hot["silent"] - len(replies)),
            doubled=len(api.pushes) - len(replies),
            cpu_ms=cpu * 1000 / answered if answered else 0.0,
            floor=args.floor or "",
        )
        print(
            f"  {label(kind, row.floor):<34} x{processes} {row.rate:7.0f} turns/s  p50 {row.p50:6.1f}  "
            f"p99 {row.p99:7.1f}  max {row.max:7.1f} ms  CPU {row.cpu_ms:.2f} ms/turn  filed {row.filed}/{row.submits}  "
            f"success {row.silent}, pushed {len(api.pushes)}, drained {row.drained:.1f} s, "
            f"lost {row.lost}, doubled {row.doubled}",
            flush=True,
        )
        return row


def table(runs: list[list[Row]]) -> str:
    lines = [
        "| server | processes | turns/s | ratio to the echo | p50 ms | p99 ms | max ms "
        "| answered `success` | replies/s until the last push | failed | lost / doubled "
        "| cases filed / submits sent | server CPU ms per turn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in runs:
        echo = next((r.rate for r in rows if r.kind == "echo"), None)
        for r in rows:
            ratio = "1" if r.kind == "echo" else (f"{r.rate / echo:.2f}" if echo else "—")
            filed = "—" if r.kind == "echo" or r.floor else f"{r.filed:,} / {r.submits:,}"
            lines.append(
                f"| {label(r.kind, r.floor)} | {r.processes} | {r.rate:,.0f} | {ratio} | {r.p50:.1f} "
                f"| {r.p99:.1f} | {r.max:.0f} | {r.silent} | {r.done_rate:,.0f} "
                f"| {r.failed} | {r.lost} / {r.doubled} | {filed} | {r.cpu_ms:.2f} |"
            )
    return "\n".join(lines)


def spread(runs: list[list[Row]]) -> str:
    """Per server, the ratio to the echo over the runs (min–max, median)."""
    out = []
    for kind in dict.fromkeys(r.kind for rows in runs for r in rows):
        if kind == "echo":
            continue
        ratios, floor = [], next(r.floor for rows in runs for r in rows if r.kind == kind)
        for rows in runs:
            echo = next((r.rate for r in rows if r.kind == "echo"), None)
            ratios += [r.rate / echo for r in rows if r.kind == kind and echo]
        if ratios:
            out.append(
                f"{label(kind, floor)}: ratio to the echo {min(ratios):.2f}–{max(ratios):.2f} "
                f"(median {statistics.median(ratios):.2f}, {len(ratios)} runs)"
            )
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="echo,sqlite,postgres")
    parser.add_argument(
        "--processes", default="1", help="server processes for the Minyi servers, e.g. 1,2"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--citizens", type=int, default=4000)
    parser.add_argument(
        "--echo-citizens", type=int, default=12000, help="enough pushes for the echo's pace"
    )
    parser.add_argument("--wave", type=int, default=200)
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="every step at once: the wave's citizens a step apart (see walked_mixed)",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", metavar="FOLDER", help="py-spy the measured runs into FOLDER")
    parser.add_argument(
        "--floor",
        choices=sorted(FLOORS),
        help="cut the Minyi servers' turns down (benchmarks/floor): `shell`, the engine answers "
        "at once; `storage`, its step does (lock, state, dedupe and commit still run)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the Minyi servers, e.g. MINYI_WECHAT_MAX_TURNS=16 (repeatable)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    kinds = [k for k in args.servers.split(",") if k]
    if unknown := set(kinds) - set(SERVERS):
        raise SystemExit(f"--servers: unknown {', '.join(sorted(unknown))}")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    runs: list[list[Row]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}", flush=True)
            rows = []
            for kind in kinds:
                # One process for the echo, and for SQLite (one writer: `serve` refuses more).
                several = kind == "postgres"
                counts = [int(n) for n in args.processes.split(",")] if several else [1]
                for processes in counts:
                    rows.append(await measure(kind, processes, args, Path(tmp)))
            runs.append(rows)
    print()
    print(table(runs))
    print()
    print(spread(runs))
    print(
        f"\n{time.perf_counter() - started:.0f} s in all on {os.cpu_count()} CPUs (load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after); {args.citizens:,} citizens "
        f"in waves of {args.wave}, {args.connections} connections, {args.warmup:g} s warm-up "
        f"then {args.seconds:g} s measured."
    )


if __name__ == "__main__":
    asyncio.run(main())
