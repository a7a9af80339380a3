"""deploy/nginx/minyi.conf with Debian's nginx: first in front of a recording upstream (what the
proxy itself does: TLS, HTTP/2, forwarded headers, body limits equal to Minyi's, unbuffered
SSE), then in front of two real Minyi processes and a worker (a WeChat filing, a live desk
conversation and an SMS survey reply, all through it)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.api import intake, routes
from bot.app import web as minyi_web
from bot.open311 import app as open311
from channels import webchat
from channels.sms import aliyun, http, tencent, twilio
from channels.telegram import webhook as telegram
from channels.wechat import callback as wechat
from channels.wecom import app as wecom

from .nginx_kit import HOST, Nginx, configure, free_port, nginx_binary, running

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
