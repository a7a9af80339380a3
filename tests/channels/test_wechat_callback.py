"""The callback refuses what WeChat did not send, and what it cannot read, before storing anything."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app

from ..conftest import REDIS_URL, TRACE_TABLES
from .conftest import wechat_settings
from .wechat_kit import (
    TOKEN,
    FakeWeChatApi,
    WeChatCitizen,
    WeChatServer,
    signature,
)


async def nothing_stored(client: TestClient, settings: Settings) -> None:
    runtime = client.app[MINYI]
    async with runtime.db.session() as session:
        for table in TRACE_TABLES.split(", "):
            count = await session.scalar(text(f"SELECT count(*) FROM {table}"))
            assert count == 0, f"{table} has {count} rows"
    if settings.redis_url:
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            stored = [k async for k in redis.scan_iter(match=settings.redis_prefix + "*")]
            # The process's own liveness (the pending-replies journal) is no trace of a push.
            alive = runtime.keys.alive("wechat", "").encode()
            assert [k for k in stored if not k.startswith(alive)] == []
        finally:
            await redis.aclose()


def forgeries(citizen: WeChatCitizen) -> dict[str, tuple[dict[str, str], bytes]]:
    """Pushes that did not come from WeChat for this account, by the reason they are refused."""
    xml = citizen.message("text", Content="1")
    safe = WeChatServer("safe")
    forged: dict[str, tuple[dict[str, str], bytes]] = {}

    query, body = safe.push(xml)
    forged["signature"] = ({**query, "signature": "0" * 40}, body)
    forged["unsigned"] = ({k: v for k, v in query.items() if k != "signature"}, body)
    forged["msg_signature"] = ({**query, "msg_signature": "f" * 40}, body)
    # Someone with the token (it sits in many config files) but another account's AppId…
    forged["app_id"] = WeChatServer("safe", app_id="wx0000000000000000").push(xml)
    # …or without the EncodingAESKey: the AppId check fails inside the garbage.
    forged["decrypt"] = WeChatServer("safe", aes_key="Z" * 43).push(xml)
    # A plaintext push to an account in safe mode would skip msg_signature.
    forged["plaintext"] = WeChatServer("plain").push(xml)
    # A signed URL captured an hour ago and replayed with a body of one's own.
    forged["stale"] = safe.push(xml, timestamp=int(time.time()) - 3600)
    return forged


async def test_forged_pushes_get_403_and_leave_no_trace(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(settings, fake_wechat)
    client = await aiohttp_client(create_app(configured, workers=False))
    citizen = WeChatCitizen(client)
    for reason, (query, body) in forgeries(citizen).items():
        response = await client.post("/wechat", params=query, data=body)
        assert response.status == 403, reason
    await nothing_stored(client, configured)
    assert fake_wechat.calls == []
    metrics = await (await client.get("/metrics")).text()
    for reason in forgeries(citizen):
        assert f'minyi_webhook_rejected_total{{channel="wechat",reason="{reason}"}} 1.0' in metrics


async def test_url_check_echoes_only_for_a_signed_request(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    client = await aiohttp_client(create_app(wechat_settings(sqlite_only, fake_wechat)))
    ts, nonce = str(int(time.time())), "1405307420"
    query = {"timestamp": ts, "nonce": nonce, "echostr": "7269284781250935811"}
    ok = await client.get("/wechat", params={**query, "signature": signature(TOKEN, ts, nonce)})
    assert ok.status == 200 and await ok.text() == "7269284781250935811"
    forged = await client.get("/wechat", params={**query, "signature": signature("x", ts, nonce)})
    assert forged.status == 403 and "7269" not in await forged.text()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&secret;</Content><MsgId>1</MsgId></xml>"""
BAD_BODIES = {
    "not xml": (b"hello", 400),
    "broken xml": (b"<xml><MsgType>text</MsgType>", 400),
    "entity expansion": (BILLION_LAUGHS, 400),
    "external entity": (EXTERNAL_ENTITY, 400),
    "another root": (b"<message><MsgType>text</MsgType></message>", 400),
    "no MsgType": (b"<xml><FromUserName>o</FromUserName></xml>", 400),
    "no sender": (b"<xml><MsgType>text</MsgType><Content>1</Content></xml>", 400),
    "bad location": (
        b"<xml><FromUserName>o</FromUserName><MsgType>location</MsgType>"
        b"<Location_X>north</Location_X><Location_Y>1</Location_Y><MsgId>1</MsgId></xml>",
        400,
    ),
    "oversized": (b"<xml><Content>" + b"x" * 70_000 + b"</Content></xml>", 413),
}


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_unreadable_bodies_are_refused_and_store_nothing(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi, mode: str
) -> None:
    configured = wechat_settings(sqlite_only, fake_wechat, mode)
    client = await aiohttp_client(create_app(configured, workers=False))
    server = WeChatServer(mode)
    for name, (body, status) in BAD_BODIES.items():
        query, sealed = server.push(body.decode())
        response = await client.post("/wechat", params=query, data=sealed)
        assert response.status == status, name
    # A signed envelope whose <Encrypt> is missing, or not XML at all.
    query, _ = server.push("<xml/>")
    for body in (b"<xml><ToUserName>gh</ToUserName></xml>", b"{}"):
        response = await client.post("/wechat", params=query, data=body)
        assert response.status in (400, 403)
    await nothing_stored(client, configured)


async def test_safe_mode_without_our_key_says_which_setting_is_missing(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    client = await aiohttp_client(
        create_app(wechat_settings(sqlite_only, fake_wechat, "plain"), workers=False)
    )
    query, body = WeChatServer("safe").push(WeChatCitizen(client).message("text"))
    response = await client.post("/wechat", params=query, data=body)
    assert response.status == 400 and "MINYI_WECHAT_AES_KEY" in await response.text()


async def test_text_that_would_close_cdata_is_quoted_safely(
    citizen_on_wechat: WeChatCitizen,
) -> None:
    citizen = citizen_on_wechat
    for message in (
        "1",
        "1",
        "物业不给修漏水的屋顶]]><MsgType>news</MsgType>已经三个月",
        "幸福小区",
    ):
        await citizen.say(message)
    await citizen.say("跳过")
    await citizen.say("张三")
    summary = await citizen.say("13800138000")
    assert "物业不给修漏水的屋顶]]><MsgType>news</MsgType>已经三个月" in summary
