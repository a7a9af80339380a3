"""Hostile requests get a 4xx and a sentence, never a 500 (issue 13, low): deep JSON, a
non-UTF-8 Authorization header, dates and cursors out of range; and the security headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.settings import Settings
from bot.app.web import create_app

AUTH = {"Authorization": "Bearer test-token"}


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


async def raw_request(client: TestClient, head: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (aiohttp's client would refuse a non-UTF-8 header)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("path", ["/webchat/messages", "/api/v1/cases/XF20261122-7K3M9Q/events"])
async def test_deeply_nested_json_is_refused_with_a_sentence(client: TestClient, path: str) -> None:
    for body in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        response = await client.post(
            path, data=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert 400 <= response.status < 500, await response.text()
        assert (await response.json())["message"]


async def test_a_non_utf8_authorization_header_is_a_401(client: TestClient) -> None:
    head = (
        b"GET /api/v1/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3(\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, body = await raw_request(client, head)
    assert status == 401, body
    assert b"Authorization" in body or b"token" in body


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/stats?to=0001-01-01T00:00:00Z",
        "/api/v1/stats?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z",
        "/api/v1/stats?from=9999-12-31T23:59:59Z",
        "/api/v1/cases?since=0001-01-01T00:00:00Z",
        f"/api/v1/cases?cursor={2**62}",
        f"/api/v1/cases?cursor={2**64}",
        f"/api/v1/events?after={2**62}",
        f"/api/v1/events?after={2**64}",
        "/api/v1/events?after=-5",
    ],
)
async def test_dates_and_cursors_out_of_range_get_a_sentence(
    client: TestClient, query: str
) -> None:
    response = await client.get(query, headers=AUTH)
    assert response.status < 500, await response.text()
    if response.status >= 400:
        assert (await response.json())["message"]


async def test_the_web_chat_page_has_its_security_headers(client: TestClient) -> None:
    page = await client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    answer = await client.post("/webchat/messages", json={"event": "start"})
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    health = await client.get("/healthz")
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    api = await client.get("/api/v1/cases", headers=AUTH)
    assert api.headers["X-Content-Type-Options"] == "nosniff"


async def test_aiohttps_own_limits_are_set(client: TestClient) -> None:
    """Header floods are cut short by the server itself (the proxy in front does the timeouts)."""
    many = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(60))
    status, _ = await raw_request(
        client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"Connection: close\r\n\r\n"
    )
    assert status == 400
    long_line = b"X-Long: " + b"a" * 5000 + b"\r\n"
    status, _ = await raw_request(
        client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + long_line + b"Connection: close\r\n\r\n"
    )
    assert status in (400, 431)
    status, _ = await raw_request(
        client, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
