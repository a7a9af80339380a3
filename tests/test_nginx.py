"""deploy/nginx/minyi.conf with Debian's nginx: first in front of a recording upstream (what the
proxy itself does: TLS, HTTP/2, forwarded headers, body limits equal to Minyi's, unbuffered
SSE), then in front of two real Minyi processes and a worker (a WeChat filing, a live desk
conversation and an SMS survey reply, all through it)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.api import intake, routes
from bot.app import web as minyi_web
from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from bot.open311 import app as open311
from channels import webchat
from channels.sms import aliyun, http, tencent, twilio
from channels.telegram import webhook as telegram
from channels.wechat import callback as wechat
from channels.wecom import app as wecom
from storage.staff import StaffAccounts, hash_password

from .channels.sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app, http_push_headers
from .channels.wechat_kit import AES_KEY, APP_ID, TOKEN, WeChatCitizen, WeChatServer
from .conftest import PII_KEY, REDIS_URL
from .desk.conftest import PASSWORD, csrf_of
from .desk.test_inbox import NONCE, THREAD_LINK
from .nginx_kit import HOST, ROOT, Nginx, configure, free_port, nginx_binary, running

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")

# Each proxied path, the largest body Minyi reads there, and where that limit is written.
LIMITS = {
    "/wechat": wechat.MAX_BODY,
    "/wecom": wecom.MAX_BODY,
    "/telegram": telegram.MAX_BODY,
    "/sms/aliyun/inbound": max(
        p.max_body for p in (aliyun.AliyunSms, tencent.TencentSms, twilio.TwilioSms, http.HttpSms)
    ),
    "/webchat/messages": webchat.MAX_BODY,
    "/api/v1/cases": max(routes.MAX_BODY, intake.MAX_BODY),
    "/open311/v2/requests.json": open311.MAX_BODY,
    "/desk/signin": minyi_web.MAX_REQUEST,
    "/": minyi_web.MAX_REQUEST,
}

API_TOKEN = "nginx-test-api-token-of-32-characters"


class Recorder:
    """Two upstreams that answer every request with what they received."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    def app(self, port: int) -> web.Application:
        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            record = {
                "port": port,
                "path": request.path,
                "remote": request.remote,
                "headers": dict(request.headers),
                "size": len(body),
            }
            self.seen.append(record)
            return web.json_response(record)

        async def live(request: web.Request) -> web.StreamResponse:
            stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await stream.prepare(request)
            await stream.write(b"event: first\ndata: 1\n\n")
            # The handler goes on only once the client has the first event: were nginx
            # buffering, the client would wait for the end and this would never be released.
            await asyncio.wait_for(self.release.wait(), 10)
            await stream.write(b"event: second\ndata: 2\n\n")
            return stream

        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/desk/live", live)
        app.router.add_route("*", "/{tail:.*}", echo)
        return app


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[Nginx, Recorder, list[web.AppRunner]]]:
    nginx_binary()
    recorder = Recorder()
    ports = (free_port(), free_port())
    runners = []
    for port in ports:
        runner = web.AppRunner(recorder.app(port))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    nginx = configure(tmp_path / "nginx", ports)
    try:
        with running(nginx):
            yield nginx, recorder, runners
    finally:
        for runner in runners:
            await runner.cleanup()


def _alpn(nginx: Nginx, server_name: str) -> str | None:
    context = nginx.client_tls()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", nginx.https), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.selected_alpn_protocol()


async def test_the_proxy_speaks_tls_and_http2_and_says_who_the_client_is(
    proxied: tuple[Nginx, Recorder, list[web.AppRunner]],
) -> None:
    nginx, recorder, _ = proxied
    assert await asyncio.to_thread(_alpn, nginx, HOST) == "h2"
    with pytest.raises(ssl.SSLError):  # any other name: no certificate, no handshake
        await asyncio.to_thread(_alpn, nginx, "other.example")

    connector = aiohttp.TCPConnector(ssl=nginx.client_tls())
    async with aiohttp.ClientSession(nginx.origin, connector=connector) as client:
        async with client.get(
            f"http://{HOST}:{nginx.http}/wechat?x=1", allow_redirects=False
        ) as plain:
            assert plain.status == 301 and plain.headers["Location"] == f"https://{HOST}/wechat?x=1"

        # What a client claims about itself is replaced by what nginx saw.
        async with client.get(
            "/api/v1/cases",
            headers={
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": "evil.example",
                "X-Real-IP": "203.0.113.9",
            },
        ) as answer:
            assert answer.status == 200
            assert answer.headers["Strict-Transport-Security"] == "max-age=63072000"
            seen = (await answer.json())["headers"]
        assert seen["X-Forwarded-For"] == "127.0.0.1"
        assert seen["X-Forwarded-Proto"] == "https"
        assert seen["Host"] == HOST and seen["X-Forwarded-Host"] == HOST
        assert seen["X-Forwarded-Port"] == str(nginx.https)
        assert "X-Real-IP" not in seen

        # Each path takes exactly what Minyi takes there; one byte more never reaches it.
        for path, limit in LIMITS.items():
            async with client.post(path, data=io.BytesIO(b"x" * limit)) as answer:
                assert answer.status == 200, (path, limit)
                assert (await answer.json())["size"] == limit
            before = len(recorder.seen)
            async with client.post(path, data=io.BytesIO(b"x" * (limit + 1))) as answer:
                assert answer.status == 413, (path, limit)
                assert (await answer.json())["error"] == "too_large"
            assert len(recorder.seen) == before, path

        async with client.get("/metrics") as answer:
            assert answer.status == 404  # scraped on each process's own port, not in public

        # Server-Sent Events pass at once, unbuffered.
        async with client.get("/desk/live") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
            assert first == b"event: first\ndata: 1\n\n"
            recorder.release.set()
            second = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
            assert second == b"event: second\ndata: 2\n\n"

    # Both processes took requests.
    ports = {record["port"] for record in recorder.seen}
    assert len(ports) == 2, recorder.seen


async def test_with_every_process_down_the_client_is_told_to_send_again(
    proxied: tuple[Nginx, Recorder, list[web.AppRunner]],
) -> None:
    nginx, _, runners = proxied
    for runner in runners:
        await runner.cleanup()
    connector = aiohttp.TCPConnector(ssl=nginx.client_tls())
    async with (
        aiohttp.ClientSession(nginx.origin, connector=connector) as client,
        client.post("/wechat", data=b"<xml/>") as answer,
    ):
        assert answer.status == 503 and answer.headers["Retry-After"] == "5"
        body = json.loads(await answer.text())
        assert body["error"] == "unavailable" and "send it again" in body["message"]


# -- Minyi behind it ------------------------------------------------------------------------------


class Processes:
    """`minyi serve --no-workers` ×2 and `minyi worker`, as deploy/systemd runs them."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:  # the child has its own copy
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", *args],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append((name, process))

    async def ready(self, ports: tuple[int, ...]) -> None:
        async with aiohttp.ClientSession() as client:
            for port in ports:
                for _ in range(600):
                    self.check_alive()
                    try:
                        async with client.get(f"http://127.0.0.1:{port}/readyz") as answer:
                            if answer.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"Minyi on port {port} never became ready\n{self.logs()}")

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited ({process.returncode})\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.folder / f'{name}.log').read_text()[-3000:]}"
            for name, _ in self.started
        )

    def stop(self) -> None:
        for _, process in self.started:
            process.terminate()
        for _, process in self.started:
            try:
                process.wait(25)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def behind_nginx(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Nginx, Processes]]:
    nginx_binary()
    database = request.getfixturevalue("clean_postgres")
    prefix = request.getfixturevalue("redis_prefix")
    settings = Settings(database_url=database, pii_key=PII_KEY)
    async with open_minyi(settings) as minyi, minyi.units() as uow:
        await StaffAccounts(uow.session).add(
            "intake", "前台小刘", "staff", await hash_password(PASSWORD)
        )
        await uow.commit()

    gateway = FakeProvider()  # the SMS gateway the worker would send through
    runner = web.AppRunner(http_gateway_app(gateway))
    await runner.setup()
    gateway_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", gateway_port).start()

    ports = (free_port(), free_port())
    nginx = configure(tmp_path / "nginx", ports)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        MINYI_DATABASE_URL=database,
        MINYI_PII_KEY=PII_KEY,
        MINYI_REDIS_URL=REDIS_URL,
        MINYI_REDIS_PREFIX=prefix,
        MINYI_STREAM=prefix + "events",
        MINYI_API_TOKEN=API_TOKEN,
        MINYI_PUBLIC_URL=nginx.origin,
        # What the hardening work reads: forwarded headers believed from nginx only.
        MINYI_TRUSTED_PROXIES="127.0.0.1/32",
        MINYI_WECHAT_TOKEN=TOKEN,
        MINYI_WECHAT_APP_ID=APP_ID,
        MINYI_WECHAT_AES_KEY=AES_KEY,
        MINYI_SMS_PROVIDER="http",
        MINYI_SMS_API_BASE=f"http://127.0.0.1:{gateway_port}",
        MINYI_SMS_WEBHOOK_SECRET=HTTP_SECRET,
        MINYI_SURVEY_QUIET_HOURS="",
        MINYI_LOG_FORMAT="json",
    )
    processes = Processes(tmp_path, env)
    try:
        for number, port in enumerate(ports, 1):
            processes.start(
                f"serve-{number}",
                "serve",
                "--no-workers",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            )
        processes.start("worker", "worker")
        await processes.ready(ports)
        with running(nginx):
            yield nginx, processes
    finally:
        processes.stop()
        await runner.cleanup()


async def _until(check: Any, what: str, processes: Processes, seconds: float = 15) -> Any:
    for _ in range(int(seconds * 10)):
        found = await check()
        if found:
            return found
        processes.check_alive()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s\n{processes.logs()}")


async def test_a_filing_a_live_conversation_and_an_sms_reply_through_nginx(
    behind_nginx: tuple[Nginx, Processes],
) -> None:
    nginx, processes = behind_nginx
    connector = aiohttp.TCPConnector(ssl=nginx.client_tls())
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    async with aiohttp.ClientSession(nginx.origin, connector=connector) as client:
        # A citizen files a matter on WeChat (safe mode, every push through nginx).
        citizen = WeChatCitizen(client=client, server=WeChatServer(mode="safe"))  # type: ignore[arg-type]
        for text in (
            "1",
            "4",
            "小区门口的路灯坏了一个多月，晚上很黑。",
            "幸福路12号东门",
            "跳过",
            "张三",
            "13800138000",
        ):
            assert await citizen.say(text), text
        receipt = await citizen.say("1")
        found = CODE.search(receipt)
        assert found, receipt
        code = found.group(0)

        # ... asks for a person; the worker puts the call on the desk.
        await citizen.say("人工")
        staff = aiohttp.ClientSession(
            nginx.origin, connector=aiohttp.TCPConnector(ssl=nginx.client_tls())
        )
        async with staff:
            page = await (await staff.get("/desk")).text()
            signed = await staff.post(
                "/desk/signin",
                data={"username": "intake", "password": PASSWORD, "csrf": csrf_of(page)},
                allow_redirects=False,
            )
            assert signed.status == 303, await signed.text()

            async def listed() -> int | None:
                inbox = await (await staff.get("/desk/inbox")).text()
                links = THREAD_LINK.findall(inbox)
                return int(links[0]) if links else None

            thread = await _until(listed, "the call for staff on the desk", processes)
            page = await (await staff.get(f"/desk/threads/{thread}")).text()
            form = {
                "csrf": csrf_of(page),
                "do": "claim",
                "text": "",
                "nonce": NONCE.findall(page)[0],
            }
            claimed = await staff.post(f"/desk/threads/{thread}", data=form)
            assert claimed.status == 200 and "已认领" in await claimed.text()

            # Two open desk pages: nginx gives them to different processes (round robin);
            # both hear the citizen, whichever process took the citizen's message.
            streams = [await staff.get("/desk/live") for _ in range(2)]
            for stream in streams:
                assert stream.status == 200
                assert stream.headers["Content-Type"].startswith("text/event-stream")
            await asyncio.sleep(0.3)  # the streams are subscribed
            assert await citizen.say("路灯在东门第三根") == ""  # to the person, not the bot
            for stream in streams:
                event = await asyncio.wait_for(_next_event(stream), timeout=5)
                assert event == ("thread", str(thread))
                stream.close()
            said = await (await staff.get(f"/desk/threads/{thread}?part=messages")).text()
            assert "路灯在东门第三根" in said

        # The back office closes the case through the API; the citizen answers the SMS survey.
        for step in (
            {"type": "accepted"},
            {"type": "assigned", "department": "cgj"},
            {"type": "replied", "note": "路灯已修复"},
            {"type": "closed"},
        ):
            async with client.post(f"/api/v1/cases/{code}/events", json=step, headers=api) as r:
                assert r.status == 200, await r.text()
        body = json.dumps({"from": "+8613800138000", "text": "1", "id": "gw-nginx-1"}).encode()
        async with client.post(
            "/sms/http/inbound", data=body, headers=http_push_headers(body)
        ) as answer:
            assert answer.status == 200, await answer.text()
        # The push is acknowledged once kept; the worker's sms-replies job rates the case.
        for _ in range(100):
            async with client.get(f"/api/v1/cases/{code}", headers=api) as answer:
                case = await answer.json()
            if case["status"] == "rated":
                break
            await asyncio.sleep(0.1)
        assert case["status"] == "rated" and case["rating"]["score"] == 1, case

    # Every request went through nginx, to both processes. (The call reached the desk through
    # the worker: the two web processes run no jobs.)
    assert len(set(nginx.upstreams())) == 2, nginx.upstreams()


async def _next_event(stream: Any) -> tuple[str, str]:
    kind, data = "", ""
    async for raw in stream.content:
        line = raw.decode().rstrip("\n").rstrip("\r")
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif not line and kind:
            return kind, data
    raise AssertionError("the stream ended")
