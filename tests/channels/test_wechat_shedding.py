"""Shedding in the WeChat callback: under overload a push is answered within the short budget
and its reply pushed, exactly once, in the order the citizen wrote."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi

from .conftest import wechat_settings
from .wechat_kit import FakeWeChatApi, WeChatCitizen, WeChatServer


async def test_under_overload_a_push_is_answered_soon_and_its_reply_pushed_exactly_once(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    """Shedding: with every turn slot taken, a push waits in line only its short budget, then
    gets `success`; its turn runs when a slot frees, and its reply is pushed once, re-deliveries
    or not."""
    runtime, first, second = await one_slot(aiohttp_client, settings, fake_wechat, budget=0.2)
    later = int(time.time()) - 6  # old enough that WeChat may be sending it again
    xml = second.message("text", Content="我要反映", CreateTime=later)
    async with runtime.store.lock(f"wechat:{first.openid}"):
        # The first citizen's turn takes the only slot and waits for its conversation: the short
        # budget (under load) runs out and the reply will be pushed.
        started = time.monotonic()
        assert (await first.deliver(first.message("text", Content="我要反映"))).body == "success"
        assert time.monotonic() - started < 1.0
        # Every slot taken: the turn waits in line, the delivery only its short budget.
        for _ in range(3):  # WeChat's re-sends too
            started = time.monotonic()
            assert (await second.deliver(xml)).body == "success"
            assert time.monotonic() - started < 1.0
        assert fake_wechat.of("message/custom/send") == []
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("message/custom/send")) >= 2)
    assert (await second.deliver(xml)).body == "success"  # after the push: still silent
    await runtime.channels["wechat"].close()  # every background task finished
    [to_first] = fake_wechat.texts_to(first.openid)
    [to_second] = fake_wechat.texts_to(second.openid)
    assert "类别" in to_first and "类别" in to_second
    # Each turn ran once: both are at the category step now, answered passively again.
    assert "事情经过" in await first.say("4")
    assert "事情经过" in await second.say("4")


async def test_a_push_that_finds_every_slot_taken_is_answered_passively_when_its_turn_is_quick(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    """Waiting in line is not a reason to push: a turn done within the short budget is answered
    in the reply itself (a pushed reply costs a claim, a journal entry and an API call)."""
    runtime, first, second = await one_slot(aiohttp_client, settings, fake_wechat, budget=2.0)
    async with runtime.store.lock(f"wechat:{first.openid}"):
        # The first citizen's turn takes the only slot, waiting for its conversation.
        held = asyncio.create_task(first.say("我要反映"))
        await asyncio.sleep(0.1)
        assert runtime.channels["wechat"].callback.running == 1
        waiting = asyncio.create_task(second.say("我要反映"))
        await asyncio.sleep(0.1)
    # The slot frees well within the second delivery's 2 s: both answered passively.
    assert "类别" in await held
    assert "类别" in await waiting
    await runtime.channels["wechat"].close()
    assert fake_wechat.of("message/custom/send") == []


async def one_slot(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi, *, budget: float
) -> tuple[Minyi, WeChatCitizen, WeChatCitizen]:
    """A server that works one turn at a time, `budget` seconds for a delivery under load, and
    two citizens of it."""
    configured = wechat_settings(
        settings, fake_wechat, "plain", wechat_max_turns=1, wechat_shed_budget=budget
    )
    client = await aiohttp_client(create_app(configured, workers=False))
    server = WeChatServer("plain")
    return (
        client.app[MINYI],
        WeChatCitizen(client, server),
        WeChatCitizen(client, server, openid="oSecondCitizen0000000000000"),
    )
