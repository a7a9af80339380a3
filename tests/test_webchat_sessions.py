"""The web chat's session is issued by the server (issue 13, item 3): a random HttpOnly,
SameSite cookie; only its keyed hash is stored, logged or used as a key, never exported; a body
`session` chooses nothing; guesses and floods are throttled per client and per chat."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Base
from storage.relay import Relay
from tests.conftest import REDIS_URL
from tests.web_citizen import AUTH, WebCitizen

COOKIE = re.compile(r"minyi_chat=([A-Za-z0-9_-]{43});")


async def app_client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def start(client: TestClient, **kwargs: Any) -> Any:
    client.session.cookie_jar.clear()
    return await client.post("/webchat/messages", json={"event": "start"}, **kwargs)


async def test_the_server_issues_a_random_httponly_cookie(
    aiohttp_client: Any, sqlite_only: Settings
) -> None:
    client = await app_client(aiohttp_client, sqlite_only)
    first, second = await start(client), await start(client)
    assert first.status == second.status == 200
    header = first.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header  # plain HTTP: a Secure cookie would never come back
    one, two = COOKIE.search(header), COOKIE.search(second.headers["Set-Cookie"])
    assert one and two and one.group(1) != two.group(1)
    # A known cookie is kept, not replaced.
    again = await client.post(
        "/webchat/messages", json={"text": "菜单"}, cookies={"minyi_chat": one.group(1)}
    )
    assert again.status == 200 and "Set-Cookie" not in again.headers


async def test_the_cookie_is_secure_behind_an_https_proxy_we_trust(
    aiohttp_client: Any, sqlite_only: Settings
) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    trusted = await app_client(aiohttp_client, sqlite_only.replace(trusted_proxies=_loopback()))
    assert "Secure" in (await start(trusted, headers=https)).headers["Set-Cookie"]
    untrusted = await app_client(aiohttp_client, sqlite_only)
    assert "Secure" not in (await start(untrusted, headers=https)).headers["Set-Cookie"]


async def test_a_session_in_the_body_chooses_nothing(
    aiohttp_client: Any, sqlite_only: Settings
) -> None:
    client = await app_client(aiohttp_client, sqlite_only)
    chosen = {"session": "S" * 24}
    for words in ("1", "4"):
        client.session.cookie_jar.clear()
        await client.post("/webchat/messages", json={"text": words, **chosen})
    client.session.cookie_jar.clear()
    # Had the body's session counted, this would be the description and the form would go on.
    words = "小区门口的路灯坏了一个多月，晚上很黑。"
    answer = await client.post("/webchat/messages", json={"text": words, **chosen})
    assert "事情发生在哪里" not in (await answer.json())["replies"][-1]["text"]
    runtime = client.server.app[MINYI]
    async with runtime.db.session() as session:
        ids = (await session.execute(text("SELECT external_id FROM identities"))).scalars().all()
    assert "S" * 24 not in ids


async def test_only_the_cookies_keyed_hash_is_stored_and_nothing_exported(
    aiohttp_client: Any, shared_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = await app_client(aiohttp_client, shared_settings)
    citizen = WebCitizen(client)
    with caplog.at_level(logging.DEBUG):
        code = await citizen.file_a_matter()
        await citizen.say("人工")
    cookie = citizen.cookies["minyi_chat"]
    runtime = client.server.app[MINYI]
    await Relay(runtime.db, runtime.cipher, runtime.redis, runtime.settings.stream).publish_once()
    # Every table, every column, as text: the cookie is nowhere; its keyed hash is the sender.
    found = []
    async with runtime.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(table.select())).all():
                if cookie in repr(tuple(row)):
                    found.append(table.name)
        ids = (await session.execute(text("SELECT external_id FROM identities"))).scalars().all()
    assert found == []
    assert ids == [runtime.cipher.digest(cookie, "webchat-session")]
    events = await (await client.get("/api/v1/events", headers=AUTH)).json()
    exported = json.dumps(events, ensure_ascii=False)
    assert cookie not in exported and ids[0] not in exported
    assert "handoff.requested" in exported and code in exported
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).text()
    assert cookie not in case and ids[0] not in case
    assert cookie not in caplog.text
    if runtime.redis is not None:
        probe = aioredis.Redis.from_url(REDIS_URL)
        keys = [
            k.decode() async for k in probe.scan_iter(match=runtime.settings.redis_prefix + "*")
        ]
        await probe.aclose()
        assert keys and not any(cookie in k for k in keys)


async def test_floods_from_one_address_are_refused_with_a_sentence(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(rate_address=(5, 60)))
    statuses = [(await start(client)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = await start(client)
    assert refused.status == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
    message = (await refused.json())["message"]
    assert "太快" in message and "too fast" in message
    # Another client address (behind a proxy we trust) is counted apart.
    other = await app_client(
        aiohttp_client, settings.replace(rate_address=(5, 60), trusted_proxies=_loopback())
    )
    for address in ("198.51.100.1", "198.51.100.2"):
        for _ in range(5):
            assert (await start(other, headers={"X-Forwarded-For": address})).status == 200


async def test_one_chat_sending_too_fast_is_refused(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(rate_sender=(3, 60)))
    citizen = WebCitizen(client)
    for _ in range(3):
        await citizen.say("菜单")
    client.session.cookie_jar.clear()
    response = await client.post(
        "/webchat/messages", json={"text": "菜单"}, cookies=citizen.cookies
    )
    assert response.status == 429 and "太快" in (await response.json())["message"]
    assert (await start(client)).status == 200  # a new chat is not held back by that one


def _loopback() -> tuple[Any, ...]:
    from channels.client import parse_networks

    return parse_networks("MINYI_TRUSTED_PROXIES", "127.0.0.1, ::1")


async def test_a_message_sent_again_is_not_counted_again(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The page re-sends a turn with the same message_id (WeChat re-sends up to four times):
    one message, one count, and every delivery of it gets the same verdict."""
    client = await app_client(aiohttp_client, settings.replace(rate_sender=(2, 60)))
    citizen = WebCitizen(client)
    await citizen.say("菜单")  # 1 (the cookie is issued here)

    async def send(message_id: str) -> int:
        client.session.cookie_jar.clear()
        response = await client.post(
            "/webchat/messages",
            json={"text": "菜单", "message_id": message_id},
            cookies=citizen.cookies,
        )
        return response.status

    assert [await send("m-2") for _ in range(4)] == [200] * 4  # 2, however often it comes
    assert [await send("m-3") for _ in range(2)] == [429, 429]  # 3: over, and so its re-send
