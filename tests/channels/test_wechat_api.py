"""Outbound WeChat calls, as the fake WeChat API received them: token, messages, templates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from channels.base import DeliveryFailed, DeliveryReport, RecipientUnreachable, Services
from channels.wechat import WeChatChannel, WeChatConfig
from channels.wechat import callback as callback_module
from conversation.messages import Choice, Inbound, Reply

from .conftest import wechat_settings
from .wechat_kit import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    OPENID,
    TOKEN,
    FakeWeChatApi,
    WeChatCitizen,
    WeChatServer,
)

TEMPLATE = {
    "wechat_template_id": "tmpl-status-1",
    "wechat_template_fields": (
        ("code", "character_string1"),
        ("status", "phrase2"),
        ("time", "time3"),
        ("note", "thing4"),
    ),
}


@pytest.fixture
async def runtime(settings: Settings, fake_wechat: FakeWeChatApi) -> AsyncIterator[Minyi]:
    async with open_minyi(wechat_settings(settings, fake_wechat, **TEMPLATE)) as rt:
        yield rt


def wechat_of(runtime: Minyi) -> WeChatChannel:
    channel = runtime.channels["wechat"]
    assert isinstance(channel, WeChatChannel)
    return channel


async def test_concurrent_callers_share_one_token_fetch(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    for n in range(12):
        fake_wechat.heard(f"openid-{n}")
    fake_wechat.token_gate = asyncio.Event()
    sends = [
        asyncio.create_task(wechat.send(f"openid-{n}", [Reply("您的事项已受理。")]))
        for n in range(12)
    ]
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("stable_token")) == 1)
    fake_wechat.token_gate.set()
    await asyncio.gather(*sends)
    assert len(fake_wechat.of("stable_token")) == 1
    assert len(fake_wechat.of("message/custom/send")) == 12
    assert {c.query["access_token"] for c in fake_wechat.of("message/custom/send")} == {
        "ACCESS_TOKEN_1"
    }
    assert fake_wechat.of("stable_token")[0].json == {
        "grant_type": "client_credential",
        "appid": APP_ID,
        "secret": APP_SECRET,
        "force_refresh": False,
    }


async def test_two_processes_share_one_token_fetch(
    shared_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(shared_settings, fake_wechat)
    async with open_minyi(configured) as one, open_minyi(configured) as two:
        for n in range(10):
            fake_wechat.heard(f"openid-{n}")
        fake_wechat.token_gate = asyncio.Event()
        sends = [
            asyncio.create_task(wechat_of(rt).send(f"openid-{n}", [Reply("好的")]))
            for n, rt in enumerate([one, two] * 5)
        ]
        await fake_wechat.wait_for(lambda: len(fake_wechat.of("stable_token")) == 1)
        fake_wechat.token_gate.set()
        await asyncio.gather(*sends)
    assert len(fake_wechat.of("stable_token")) == 1


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    fake_wechat.heard(OPENID)
    await wechat.send(OPENID, [Reply("第一条")])
    fake_wechat.expire()  # 42001; normal mode hands out a new token
    await wechat.send(OPENID, [Reply("第二条")])
    assert [c.path for c in fake_wechat.calls] == [
        "stable_token",
        "message/custom/send",
        "message/custom/send",  # refused: 42001
        "stable_token",
        "message/custom/send",
    ]
    assert fake_wechat.texts_to(OPENID) == ["第一条", "第二条", "第二条"]


async def test_a_revoked_token_that_normal_mode_still_returns_is_forced(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    fake_wechat.heard(OPENID)
    await wechat.send(OPENID, [Reply("一")])
    fake_wechat.revoke()  # 40001, yet stable_token in normal mode returns the same token
    await wechat.send(OPENID, [Reply("二")])
    tokens = fake_wechat.of("stable_token")
    assert [t.json["force_refresh"] for t in tokens] == [False, False, True]
    assert fake_wechat.of("message/custom/send")[-1].query["access_token"] == "ACCESS_TOKEN_2"


async def test_a_token_refused_twice_is_a_delivery_failure_not_a_loop(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    for _ in range(2):
        fake_wechat.answer_next("message/custom/send", {"errcode": 40001, "errmsg": "invalid"})
    with pytest.raises(DeliveryFailed) as failed:
        await wechat.send(OPENID, [Reply("你好")])
    assert "40001" in failed.value.reason
    assert len(fake_wechat.of("message/custom/send")) == 2


@pytest.mark.parametrize(
    ("errcode", "unreachable", "retry_after"),
    [
        (45015, True, None),  # outside the 48-hour window
        (45047, True, None),  # customer-service quota used up
        (43004, True, None),  # no longer following
        (-1, False, 5.0),  # WeChat busy
        (45009, False, 3600.0),  # daily quota
        (40037, False, None),  # a configuration error
    ],
)
async def test_send_errors_are_typed_for_the_notifier(
    sqlite_only: Settings,
    fake_wechat: FakeWeChatApi,
    errcode: int,
    unreachable: bool,
    retry_after: float | None,
) -> None:
    async with open_minyi(wechat_settings(sqlite_only, fake_wechat)) as runtime:
        fake_wechat.answer_next("message/custom/send", {"errcode": errcode, "errmsg": "…"})
        with pytest.raises(DeliveryFailed) as failed:
            await wechat_of(runtime).send(OPENID, [Reply("您的事项已办结。")])
    assert isinstance(failed.value, RecipientUnreachable) is unreachable
    assert failed.value.retry_after == retry_after and str(errcode) in failed.value.reason


async def test_send_renders_choices_and_splits_long_text_without_escaping(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    fake_wechat.heard(OPENID)
    await wechat.send(OPENID, [Reply("请评价：", (Choice("1", "满意"), Choice("2", "不满意")))])
    await wechat.send(OPENID, [Reply("答复：" + "经调查，该路段路灯已于本周修复。" * 150)])
    first, *rest = fake_wechat.of("message/custom/send")
    assert first.json["text"]["content"] == "请评价：\n1 满意\n2 不满意"
    assert "满意".encode() in first.body and b"\\u" not in first.body  # UTF-8, not \u escapes
    pieces = [c.json["text"]["content"] for c in rest]
    assert len(pieces) == 4 and all(len(p.encode()) <= 2048 for p in pieces)
    assert all(p.endswith("。") for p in pieces)  # broken after a sentence
    assert "".join(c.json["text"]["content"] for c in rest).count("已于本周修复") == 150


async def test_template_message_maps_our_fields_and_is_idempotent(
    runtime: Minyi, fake_wechat: FakeWeChatApi
) -> None:
    wechat = wechat_of(runtime)
    fields = {
        "code": "XF20261122-7K3M9Q",
        "status": "已交办给责任单位",
        "time": "2026年11月25日 10:30",
        "note": "已交市住建局办理，请耐心等待答复，有进展会再通知您。",
        "department": "not in the template",
    }
    first = await wechat.send_template(OPENID, fields, "case-7:event-3:wechat")
    again = await wechat.send_template(OPENID, fields, "case-7:event-3:wechat")
    assert first == again and first.isdigit()
    call = fake_wechat.of("message/template/send")[0].json
    assert call["touser"] == OPENID and call["template_id"] == "tmpl-status-1"
    assert call["client_msg_id"] == "case-7:event-3:wechat"
    assert call["data"] == {
        "character_string1": {"value": "XF20261122-7K3M9Q"},
        "phrase2": {"value": "已交办给…"},  # phrase: at most 5 characters
        "time3": {"value": "2026年11月25日 10:30"},
        "thing4": {"value": "已交市住建局办理，请耐心等待答复，有进…"},  # thing: at most 20
    }
    await wechat.send_template(OPENID, fields, "k" * 100)
    long_key = fake_wechat.of("message/template/send")[-1].json["client_msg_id"]
    assert len(long_key) == 32 and long_key != "k" * 32


async def test_no_template_configured_moves_the_chain_on(
    sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    async with open_minyi(wechat_settings(sqlite_only, fake_wechat)) as runtime:
        with pytest.raises(RecipientUnreachable, match="no template configured"):
            await wechat_of(runtime).send_template(OPENID, {"code": "XF"}, "k1")
    assert fake_wechat.calls == []


async def test_credentials_and_network_failures_say_what_to_fix(
    sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    wrong_secret = wechat_settings(sqlite_only, fake_wechat).replace(wechat_app_secret="nope")
    async with open_minyi(wrong_secret) as runtime:
        with pytest.raises(DeliveryFailed, match="MINYI_WECHAT_APP_SECRET"):
            await wechat_of(runtime).send(OPENID, [Reply("你好")])
    unreachable = wrong_secret.replace(wechat_api_base="http://127.0.0.1:9")
    async with open_minyi(unreachable) as runtime:
        with pytest.raises(DeliveryFailed) as failed:
            await wechat_of(runtime).send(OPENID, [Reply("你好")])
        assert failed.value.retry_after == 5 and "secret" not in failed.value.reason
    no_secret = wrong_secret.replace(wechat_app_secret=None)
    async with open_minyi(no_secret) as runtime:
        with pytest.raises(DeliveryFailed, match="MINYI_WECHAT_APP_SECRET is not set"):
            await wechat_of(runtime).send(OPENID, [Reply("你好")])


# -- the channel with a handler of our own, to see failures and shutdown --------------------------


async def channel_app(
    aiohttp_client: Any,
    runtime: Minyi,
    handle: Any,
    reports: list[DeliveryReport] | None = None,
    budget: float = 4.0,
) -> tuple[WeChatChannel, WeChatCitizen]:
    config = WeChatConfig(
        token=TOKEN,
        app_id=APP_ID,
        apology="系统暂时有点忙，请稍后再发一次。",
        app_secret=APP_SECRET,
        aes_key=AES_KEY,
        api_base=runtime.settings.channel("wechat").api_base,
        reply_budget=budget,
    )
    channel = WeChatChannel(config, handle)

    async def report(delivery: DeliveryReport) -> None:
        (reports if reports is not None else []).append(delivery)

    await channel.start(Services(http=runtime.http, shared=runtime.shared, delivery_report=report))
    app = web.Application()
    app.router.add_routes(channel.routes())
    return channel, WeChatCitizen(await aiohttp_client(app), WeChatServer("safe"))


async def test_a_template_receipt_is_a_delivery_report(aiohttp_client: Any, runtime: Minyi) -> None:
    reports: list[DeliveryReport] = []
    _, citizen = await channel_app(aiohttp_client, runtime, runtime.handle, reports)
    delivery = await citizen.send("event_templatesendjobfinish")
    assert (delivery.status, delivery.body) == (200, "")
    assert reports == [
        DeliveryReport(
            channel="wechat",
            message_id="3147483654",
            delivered=False,
            status="failed:user block",
        )
    ]


async def test_a_failed_turn_apologises_instead_of_going_silent(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    async def broken(inbound: Inbound) -> list[Reply]:
        raise RuntimeError("database went away")

    async with open_minyi(wechat_settings(sqlite_only, fake_wechat)) as runtime:
        _, citizen = await channel_app(aiohttp_client, runtime, broken)
        assert "请稍后再发一次" in (await citizen.send("text")).text


async def test_close_lets_a_pending_push_go_out_then_cancels_the_rest(
    aiohttp_client: Any,
    sqlite_only: Settings,
    fake_wechat: FakeWeChatApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = asyncio.Event()
    never = asyncio.Event()

    async def slow(inbound: Inbound) -> list[Reply]:
        await (release if inbound.text == "soon" else never).wait()
        return [Reply(f"答复：{inbound.text}")]

    async with open_minyi(wechat_settings(sqlite_only, fake_wechat)) as runtime:
        channel, citizen = await channel_app(aiohttp_client, runtime, slow, budget=0.5)
        assert (await citizen.send("text", Content="soon")).body == ""
        assert (await citizen.send("text", Content="never")).body == ""
        monkeypatch.setattr(callback_module, "CLOSE_GRACE", 1.0)
        closing = asyncio.create_task(channel.close())
        release.set()
        await closing
        assert fake_wechat.texts_to(citizen.openid) == ["答复：soon"]
        assert channel.callback.tasks == set()
