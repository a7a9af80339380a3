"""The conversation-state contract, run against the database store and the Redis store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.messages import Reply
from conversation.ports import Conflict
from conversation.state import ConversationState
from storage.conversations import Busy, DatabaseConversationStore, RedisConversationStore

from .conftest import settings_for


async def recalled(runtime: Minyi, key: str, dedupe_key: str) -> list[Reply] | None:
    """As the engine asks: before the turn (Redis answers here), then inside it (the database)."""
    seen = await runtime.store.recall(dedupe_key)
    if seen is not None:
        return seen
    async with runtime.store.turn() as turn:
        await turn.load_state(key)
        return await turn.recall(dedupe_key)


async def test_state_round_trips(runtime: Minyi) -> None:
    store = runtime.store
    async with store.turn() as turn:
        assert await turn.load_state("webchat:a") is None
        await turn.save_state(
            "webchat:a", ConversationState(flow="filing", step="name", data={"x": "张"})
        )
        await turn.commit()
    async with store.turn() as turn:
        state = await turn.load_state("webchat:a")
    assert state is not None and (state.flow, state.step, state.data) == (
        "filing",
        "name",
        {"x": "张"},
    )


async def test_uncommitted_turn_changes_nothing(runtime: Minyi) -> None:
    store = runtime.store
    async with store.turn() as turn:
        await turn.load_state("webchat:b")
        await turn.save_state("webchat:b", ConversationState(flow="faq"))
        await turn.remember("webchat:b:m1", [Reply("hi")])
    async with store.turn() as turn:
        assert await turn.load_state("webchat:b") is None
    assert await recalled(runtime, "webchat:b", "webchat:b:m1") is None


async def test_remembered_replies_come_back(runtime: Minyi) -> None:
    store = runtime.store
    async with store.turn() as turn:
        await turn.load_state("webchat:c")
        await turn.save_state("webchat:c", ConversationState())
        await turn.remember("webchat:c:m1", [Reply("请选择", ())])
        await turn.commit()
    assert await recalled(runtime, "webchat:c", "webchat:c:m1") == [Reply("请选择")]
    assert await recalled(runtime, "webchat:c", "webchat:c:m2") is None


async def test_lock_serialises_one_conversation_but_not_two(runtime: Minyi) -> None:
    store = runtime.store
    order: list[str] = []

    async def hold(key: str, name: str, delay: float) -> None:
        async with store.lock(key):
            order.append(f"{name}+")
            await asyncio.sleep(delay)
            order.append(f"{name}-")

    await asyncio.gather(hold("k1", "a", 0.05), hold("k1", "b", 0.0))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    order.clear()
    await asyncio.gather(hold("k2", "a", 0.05), hold("k3", "b", 0.05))
    assert set(order[:2]) == {"a+", "b+"}  # both held at once: different conversations never wait


async def test_database_store_detects_a_concurrent_writer(database_settings: Settings) -> None:
    """Two processes on one database: the version column makes the loser retry."""
    async with open_minyi(database_settings) as runtime:
        await _detects_concurrent_writer(runtime)


async def _detects_concurrent_writer(runtime: Minyi) -> None:
    store = runtime.store
    assert isinstance(store, DatabaseConversationStore)
    async with store.turn() as turn:
        await turn.load_state("webchat:d")
        await turn.save_state("webchat:d", ConversationState(flow="faq"))
        await turn.commit()
    async with store.turn() as first:
        await first.load_state("webchat:d")
        await first.save_state("webchat:d", ConversationState(flow="status"))
        await first.commit()
    with pytest.raises(Conflict):
        async with store.turn() as late:
            late._versions["webchat:d"] = 1  # it read version 1 before `first` committed
            await late.save_state("webchat:d", ConversationState(flow="rating"))
            await late.commit()


# -- the Redis store's lock: short, renewed while its turn runs -------------------------------


@pytest.fixture
async def redis_runtime(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Minyi]:
    async with open_minyi(settings_for(request, "postgres+redis", tmp_path)) as runtime:
        yield runtime


async def test_a_turn_behind_a_dead_holder_gets_the_conversation(redis_runtime: Minyi) -> None:
    """Found by the soak: a SIGKILLed process (or a turn whose Redis write was lost in an
    outage) left its conversation locked for the lock's 30 s, longer than a turn waits (10 s);
    the citizen's next turns failed with the apology for half a minute."""
    store = redis_runtime.store
    assert isinstance(store, RedisConversationStore)
    assert store.lock_ttl < store.lock_wait  # a waiter always outlasts a dead holder's lock
    # What a process killed in the middle of a turn leaves behind: the lock, with its full TTL.
    await store.redis.set(
        store.keys.lock("wechat:dead"), "a-dead-token", px=int(store.lock_ttl * 1000)
    )
    async with store.lock("wechat:dead"):
        pass  # taken, not Busy


async def test_a_long_turn_keeps_its_lock_past_the_ttl(redis_runtime: Minyi) -> None:
    store = redis_runtime.store
    assert isinstance(store, RedisConversationStore)
    short = RedisConversationStore(
        store.db, store.cipher, store.tz, store.redis, store.keys, lock_ttl=0.9, lock_wait=0.0
    )
    other = RedisConversationStore(
        store.db, store.cipher, store.tz, store.redis, store.keys, lock_ttl=0.9, lock_wait=0.0
    )
    async with short.lock("wechat:slow"):
        await asyncio.sleep(3 * short.lock_ttl)  # a turn slower than its lock's TTL
        with pytest.raises(Busy):  # still held: renewed, never expired under the turn
            async with other.lock("wechat:slow"):
                pass
    async with other.lock("wechat:slow"):
        pass  # and let go when the turn ends
