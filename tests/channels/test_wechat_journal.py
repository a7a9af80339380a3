"""The journal of WeChat deliveries answered `success` before their replies went out (Redis):
a process that dies before its push leaves the message to another process, which pushes the
replies exactly once; a live process's entries are its own; nothing in it is plaintext."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi
from channels.wechat.callback import Callback
from conversation.messages import Inbound
from storage.pending import RedisPending
from tests.conftest import settings_for

from .conftest import wechat_settings
from .wechat_kit import FakeWeChatApi, WeChatCitizen, WeChatServer

SECOND = "oSecondCitizen0000000000000"


@pytest.fixture
def redis_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    return settings_for(request, "postgres+redis", tmp_path)


def journal_of(callback: Callback) -> RedisPending:
    assert isinstance(callback.journal, RedisPending)
    return callback.journal


async def entries(runtime: Minyi) -> dict[bytes, bytes]:
    assert runtime.redis is not None
    found: dict[bytes, bytes] = await runtime.redis.hgetall(runtime.keys.pending("wechat"))
    return found


async def app(aiohttp_client: Any, settings: Settings) -> tuple[Minyi, Callback, Any]:
    client = await aiohttp_client(create_app(settings, workers=False))
    runtime: Minyi = client.app[MINYI]
    return runtime, runtime.channels["wechat"].callback, client


async def die(runtime: Minyi, callback: Callback) -> None:
    """A process killed: its work stops where it is, its liveness is not renewed (here: gone
    at once, as it would be after its 15 s), and nothing is cleaned up."""
    assert callback._keeper is not None and runtime.redis is not None

    async def dead(*_: Any) -> None:
        # A killed process sends nothing. (A cancelled turn may end in an exception rather than
        # a cancellation, which its push would answer with the apology: not so when killed.)
        raise asyncio.CancelledError

    callback.push = dead
    callback._keeper.cancel()
    for task in list(callback.tasks):
        task.cancel()
    await asyncio.gather(callback._keeper, *callback.tasks, return_exceptions=True)
    callback._keeper = None
    journal = journal_of(callback)
    await runtime.redis.delete(runtime.keys.alive("wechat", journal.owner))
    callback.journal = None  # its close() at the end of the test must not touch the journal


async def test_a_process_that_dies_before_its_push_leaves_the_message_to_another(
    aiohttp_client: Any, redis_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(
        redis_settings, fake_wechat, "plain", wechat_max_turns=1, wechat_shed_budget=0.2
    )
    runtime, callback, client = await app(aiohttp_client, configured)
    server = WeChatServer("plain")
    first = WeChatCitizen(client, server)
    second = WeChatCitizen(client, server, openid=SECOND)
    async with runtime.store.lock(f"wechat:{first.openid}"):
        # Over budget (the conversation is busy), then shed (the one slot is taken).
        assert (await first.deliver(first.message("text", Content="我要反映"))).body == "success"
        assert (await second.deliver(second.message("text", Content="我要反映"))).body == "success"
        stored = await entries(runtime)
        assert len(stored) == 2  # written before the answers
        for value in stored.values():  # the citizen's words are sealed, not readable
            assert "我要反映".encode() not in value and b"text" not in value
        await die(runtime, callback)
    assert fake_wechat.of("message/custom/send") == []
    # Another process starts: it sees the entries' owner gone, and takes them.
    runtime2, callback2, client2 = await app(aiohttp_client, configured)
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("message/custom/send")) >= 2)
    await callback2.close()
    assert callback2.recovered == 2
    assert await entries(runtime2) == {}
    [to_first] = fake_wechat.texts_to(first.openid)
    [to_second] = fake_wechat.texts_to(SECOND)
    assert "类别" in to_first and "类别" in to_second
    # Each turn ran once: both are at the category step.
    again = WeChatCitizen(client2, server)
    assert "事情经过" in await again.say("4")


async def test_shedding_leaves_the_journal_empty_once_the_replies_are_pushed(
    aiohttp_client: Any, redis_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(
        redis_settings, fake_wechat, "plain", wechat_max_turns=1, wechat_shed_budget=0.2
    )
    runtime, callback, client = await app(aiohttp_client, configured)
    server = WeChatServer("plain")
    first = WeChatCitizen(client, server)
    second = WeChatCitizen(client, server, openid=SECOND)
    xml = second.message("text", Content="我要反映", CreateTime=int(time.time()) - 6)
    async with runtime.store.lock(f"wechat:{first.openid}"):
        assert (await first.deliver(first.message("text", Content="我要反映"))).body == "success"
        for _ in range(3):  # WeChat's re-sends: claimed once, written once
            assert (await second.deliver(xml)).body == "success"
        assert len(await entries(runtime)) == 2
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("message/custom/send")) >= 2)
    await callback.close()
    assert await entries(runtime) == {}
    assert len(fake_wechat.texts_to(first.openid)) == 1
    assert len(fake_wechat.texts_to(SECOND)) == 1


async def test_a_live_process_keeps_its_entries(
    aiohttp_client: Any, redis_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(redis_settings, fake_wechat, "plain", wechat_reply_budget=0.3)
    runtime, callback, client = await app(aiohttp_client, configured)
    _, other, _ = await app(aiohttp_client, configured)
    citizen = WeChatCitizen(client, WeChatServer("plain"))
    owner = journal_of(callback).owner
    async with runtime.store.lock(f"wechat:{citizen.openid}"):
        assert (
            await citizen.deliver(citizen.message("text", Content="我要反映"))
        ).body == "success"
        for _ in range(3):
            assert await other.recover() == 0
        assert list((await journal_of(other).owners()).values()) == [owner]
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("message/custom/send")) >= 1)
    await callback.close()
    assert await other.recover() == 0
    await other.close()
    assert await entries(runtime) == {}
    assert other.recovered == 0
    assert len(fake_wechat.texts_to(citizen.openid)) == 1


async def test_a_recovered_message_handled_long_ago_pushes_nothing(
    aiohttp_client: Any, redis_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    """Its process finished the turn, then died before pushing, and the replies are no longer
    remembered (past MINYI_REDELIVERY_SECONDS): "taken already" would only puzzle the citizen."""
    configured = wechat_settings(redis_settings, fake_wechat, "plain", redelivery_seconds=1)
    runtime, callback, client = await app(aiohttp_client, configured)
    citizen = WeChatCitizen(client, WeChatServer("plain"))
    delivery = await citizen.deliver(citizen.message("text", Content="我要反映", MsgId="7770001"))
    assert "类别" in delivery.text  # answered passively, the turn done
    await asyncio.sleep(1.5)
    assert runtime.redis is not None
    dead = RedisPending(runtime.redis, runtime.keys, runtime.cipher, "wechat")  # never beats
    inbound = Inbound("wechat", citizen.openid, text="我要反映", message_id="7770001")
    await dead.put(f"wechat:answer:{citizen.openid}:7770001", inbound)
    assert await callback.recover() == 1
    await callback.close()
    assert await entries(runtime) == {}
    assert fake_wechat.of("message/custom/send") == []
