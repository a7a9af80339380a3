"""What only one store does: the database store's version column, the Redis store's lock TTL.

What every store does is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.ports import Conflict
from conversation.state import ConversationState
from storage.conversations import Busy, DatabaseConversationStore, RedisConversationStore

from .conftest import settings_for


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
