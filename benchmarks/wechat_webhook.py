"""Load on `POST /wechat`: the full app against a minimal wechatpy verify/parse/echo baseline.

    python benchmarks/wechat_webhook.py            # the table in docs/wechat.md (about 90 s on 2 cores)
    python benchmarks/wechat_webhook.py --quick    # a smoke run

Every request is a real WeChat push over loopback: signed, and in AES mode encrypted with
wechatpy exactly as WeChat's servers do. Each of the 64 connections is one citizen walking
through a whole filing (menu, category, description, address, photos skipped, name, mobile,
submit), so the full app runs a complete conversational turn per request and files a case
every nine. The baseline only checks the signature, decrypts, parses and echoes the text
back (encrypted in AES mode): the floor of what any WeChat callback in Python costs.

Servers run as separate processes (`minyi serve`, or this file for the baselines); with two
processes the connections alternate between them, as behind a balancer. The load generator
shares the machine: on 2 cores it competes with the servers, so compare rows with each other,
not with other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "benchToken0123456789"  # 16-32 letters and digits, as WeChat (and Minyi) want
APP_ID = "wxbench0000000000"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PII_KEY = base64.urlsafe_b64encode(b"b" * 32).decode()
PG_ADMIN = os.environ.get(
    "MINYI_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("MINYI_BENCH_REDIS", "redis://127.0.0.1:6379/0")
FILING = (
    "菜单",
    "1",
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "XX区幸福路12号幸福小区东门",
    "跳过",
    "张三",
    "1380013{n:04d}",  # each citizen their own mobile, as in life (one row per citizen)
    "1",
)
BASELINE = "baseline: wechatpy verify/parse/echo"
CHANNEL = "Minyi callback, echo engine"
TEXT_PUSH = (
    "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
    "<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
    "<MsgId>{msg_id}</MsgId></xml>"
)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# -- the baseline server ---------------------------------------------------------------------------


def baseline_app() -> web.Application:
    """Verify, decrypt, parse, echo: wechatpy and nothing else."""
    from wechatpy import create_reply, parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
            body = await request.read()
            if q.get("encrypt_type") == "aes":
                body = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        except (InvalidSignatureException, KeyError):
            return web.Response(status=403)
        message = parse_message(body)
        reply = create_reply(getattr(message, "content", ""), message=message, render=True)
        if q.get("encrypt_type") == "aes":
            reply = crypto.encrypt_message(reply, q["nonce"])
        return web.Response(text=reply, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat", callback)
    app.router.add_get("/healthz", healthz)
    return app


def channel_app() -> web.Application:
    """Our WeChat callback (envelope, defusedxml, claims, rendering) in front of an engine that
    only echoes: what the channel itself costs, without the conversation and the database."""
    from channels.base import Services
    from channels.wechat import WeChatChannel, WeChatConfig
    from conversation.messages import Inbound, Reply

    class MemoryShared:
        def __init__(self) -> None:
            self.values: dict[str, str] = {}

        async def get(self, key: str) -> str | None:
            return self.values.get(key)

        async def set(self, key: str, value: str, ttl: float) -> None:
            self.values[key] = value

        async def add(self, key: str, value: str, ttl: float) -> bool:
            return self.values.setdefault(key, value) == value

        @contextlib.asynccontextmanager
        async def lock(self, key: str, seconds: float) -> AsyncIterator[None]:
            yield

    async def echo(inbound: Inbound) -> list[Reply]:
        return [Reply(inbound.text)]

    aes = os.environ.get("MINYI_WECHAT_AES_KEY")
    channel = WeChatChannel(WeChatConfig(TOKEN, APP_ID, "busy", aes_key=aes), echo)

    async def start(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            await channel.start(Services(http=http, shared=MemoryShared()))
            yield
            await channel.close()

    app = web.Application()
    app.cleanup_ctx.append(start)
    app.router.add_routes(channel.routes())
    app.router.add_get("/healthz", healthz)
    return app


# -- servers -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Servers:
    label: str
    processes: int
    env: dict[str, str] = field(default_factory=dict)
    baseline: str = ""  # "echo" (wechatpy only) or "channel" (our callback, echo engine)
    ports: list[int] = field(default_factory=list)

    @contextlib.contextmanager
    def running(self, workdir: Path) -> Iterator[list[str]]:
        procs: list[subprocess.Popen[bytes]] = []
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
        environment |= {"PYTHONPATH": str(ROOT), "MINYI_LOG_LEVEL": "WARNING", **self.env}
        try:
            for _ in range(self.processes):
                port = free_port()
                if self.baseline:
                    command = [sys.executable, __file__, f"--{self.baseline}-port", str(port)]
                else:
                    command = [sys.executable, "-m", "bot", "serve", "--no-workers"]
                    command += ["--host", "127.0.0.1", "--port", str(port)]
                procs.append(
                    subprocess.Popen(
                        command, cwd=workdir, env=environment, stderr=subprocess.DEVNULL
                    )
                )
                self.ports.append(port)
            urls = [f"http://127.0.0.1:{p}" for p in self.ports]
            asyncio.run(wait_healthy(urls))
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
            self.ports.clear()


async def wait_healthy(urls: list[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for url in urls:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"server at {url} did not start")


# -- the load generator ------------------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float]
    elapsed: float
    errors: int
    silent: int  # 200 without a passive reply: over the reply budget, pushed later

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def signed(text: str, openid: str, aes: bool) -> tuple[dict[str, str], bytes]:
    from wechatpy.crypto import WeChatCrypto

    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    xml = TEXT_PUSH.format(openid=openid, ts=ts, text=text, msg_id=uuid.uuid4().int >> 66)
    query = {
        "signature": hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest(),
        "timestamp": ts,
        "nonce": nonce,
    }
    if not aes:
        return query, xml.encode()
    sealed = ElementTree.fromstring(
        WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(xml, nonce, ts)
    )
    query |= {"encrypt_type": "aes", "msg_signature": sealed.findtext("MsgSignature", "")}
    body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{sealed.findtext('Encrypt')}]]></Encrypt></xml>"
    return query, body.encode()


async def load(
    urls: list[str], *, aes: bool, seconds: float, warmup: float, connections: int
) -> Result:
    latencies: list[float] = []
    errors = silent = 0
    run = uuid.uuid4().hex[:8]
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        measure_from = start + warmup
        stop = measure_from + seconds

        async def citizen(n: int) -> None:
            nonlocal errors, silent
            url = urls[n % len(urls)] + "/wechat"
            openid = f"o{run}{n:04d}"
            turn = 0
            while time.perf_counter() < stop:
                query, body = signed(FILING[turn % len(FILING)].format(n=n), openid, aes)
                turn += 1
                began = time.perf_counter()
                try:
                    async with http.post(url, params=query, data=body) as response:
                        text = await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok, text = False, b""
                ended = time.perf_counter()
                if began < measure_from:
                    continue
                if not ok:
                    errors += 1
                    continue
                if not text.startswith(b"<xml>"):
                    silent += 1
                latencies.append(ended - began)

        await asyncio.gather(*(citizen(n) for n in range(connections)))
        elapsed = time.perf_counter() - measure_from
    return Result(latencies, elapsed, errors, silent)


# -- backends -------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"minyi_bench_{os.getpid()}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env |= {"PYTHONPATH": str(ROOT), "MINYI_DATABASE_URL": url, "MINYI_PII_KEY": PII_KEY}
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    try:
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    import redis

    prefix = f"minyi-bench:{os.getpid()}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Row:
    server: str
    processes: int
    mode: str
    result: Result


def measure(
    servers: Servers, workdir: Path, modes: list[str], args: argparse.Namespace
) -> list[Row]:
    rows = []
    with servers.running(workdir) as urls:
        for mode in modes:
            result = asyncio.run(
                load(
                    urls,
                    aes=mode == "aes",
                    seconds=args.seconds,
                    warmup=args.warmup,
                    connections=args.connections,
                )
            )
            rows.append(Row(servers.label, servers.processes, mode, result))
            print(
                f"  {servers.label:<32} x{servers.processes} {mode:<9} {result.rate:8.0f} req/s",
                file=sys.stderr,
            )
    return rows


def wechat_env(mode: str) -> dict[str, str]:
    env = {
        "MINYI_WECHAT_TOKEN": TOKEN,
        "MINYI_WECHAT_APP_ID": APP_ID,
        "MINYI_WECHAT_API_BASE": "http://127.0.0.1:9",  # nothing may leave the machine
        "MINYI_PII_KEY": PII_KEY,
        # The load replays citizens faster than any person types: no per-sender limit here.
        "MINYI_RATE_SENDER": "100000/min",
    }
    if mode == "aes":
        env["MINYI_WECHAT_AES_KEY"] = AES_KEY
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 s rows, no PostgreSQL")
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--channel-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_port or args.channel_port:
        app = baseline_app() if args.echo_port else channel_app()
        port = args.echo_port or args.channel_port
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
        return
    if args.quick:
        args.seconds, args.warmup = 1.0, 0.5
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    both = ["plaintext", "aes"]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for processes in (1,) if args.quick else (1, 2):
            rows += measure(Servers(BASELINE, processes, baseline="echo"), workdir, both, args)
        for mode in both:
            channel = Servers(CHANNEL, 1, wechat_env(mode), baseline="channel")
            rows += measure(channel, workdir, [mode], args)
        for mode in both:
            sqlite = {"MINYI_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/minyi-{mode}.db"}
            full = Servers("Minyi, SQLite", 1, wechat_env(mode) | sqlite)
            rows += measure(full, workdir, [mode], args)
        if not args.quick:
            with postgres_database() as url, redis_prefix() as prefix:
                shared = {
                    "MINYI_DATABASE_URL": url,
                    "MINYI_REDIS_URL": REDIS_URL,
                    "MINYI_REDIS_PREFIX": prefix,
                    "MINYI_STREAM": prefix + "events",
                }
                for processes in (1, 2):
                    for mode in both:
                        full = Servers(
                            "Minyi, PostgreSQL + Redis", processes, wechat_env(mode) | shared
                        )
                        rows += measure(full, workdir, [mode], args)
    print(table(rows))
    print(
        f"\n{time.perf_counter() - started:.0f} s in all on {os.cpu_count()} CPUs (load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after); {args.connections} "
        f"connections; {args.seconds:g} s per row after {args.warmup:g} s of warm-up."
    )


def table(rows: list[Row]) -> str:
    baselines = {(r.processes, r.mode): r.result.rate for r in rows if r.server == BASELINE}
    lines = [
        "| server | processes | mode | requests/s | p50 ms | p99 ms | vs baseline "
        "| over budget | errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row.result
        base = baselines.get((row.processes, row.mode))
        ratio = "—" if row.server == BASELINE or not base else f"{r.rate / base:.0%}"
        lines.append(
            f"| {row.server} | {row.processes} | {row.mode} | {r.rate:,.0f} "
            f"| {r.percentile(0.50):.1f} | {r.percentile(0.99):.1f} | {ratio} | {r.silent} "
            f"| {r.errors} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
