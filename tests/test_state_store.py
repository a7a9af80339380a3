"""What only one store does: the database store's version column, the Redis store's lock TTL.

What every store does is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.messages import Reply
from conversation.ports import Conflict, Forgotten
from conversation.state import ConversationState
from storage.conversations import (
    Busy,
    DatabaseConversationStore,
    RedisConversationStore,
    purge_expired,
)
from storage.models import InboundDedupe

from .conftest import Citizen, settings_for
from .sql_trace import statements


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


async def test_database_store_a_message_remembered_already_conflicts_an_expired_one_is_replaced(
    database_settings: Settings,
) -> None:
    """A turn remembering a message whose live record is already there (answered elsewhere:
    the conversation's lock or transaction lock normally keeps this from happening) writes
    nothing and conflicts, so the turn runs again and finds that answer; an expired record of
    the same id is replaced."""
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        await answered_as(store, "webchat:elsewhere", "webchat:p:m1", "first")
        with pytest.raises(Conflict):
            async with store.turn() as late:
                await late.load_state("webchat:p")
                await late.save_state("webchat:p", ConversationState(flow="faq"))
                await late.remember("webchat:p:m1", [Reply("second")])
        async with store.turn() as again:
            assert await again.recall("webchat:p:m1") == [Reply("first")]
        # Expired, but not yet purged: a new answer takes its place without a conflict.
        async with runtime.db.session() as session, session.begin():
            row = await session.get(InboundDedupe, "webchat:p:m1")
            assert row is not None
            row.expires_at -= timedelta(days=30)
        await answered_as(store, "webchat:p", "webchat:p:m1", "anew")
        async with store.turn() as later:
            assert await later.recall("webchat:p:m1") == [Reply("anew")]


async def answered_as(store: DatabaseConversationStore, key: str, message: str, text: str) -> None:
    async with store.turn() as turn:
        await turn.load_state(key)
        await turn.save_state(key, ConversationState(flow="faq"))
        await turn.remember(message, [Reply(text)])
        await turn.commit()


async def answered(store: DatabaseConversationStore | RedisConversationStore, n: int) -> None:
    """A turn of conversation webchat:r answering its message m<n>."""
    async with store.lock("webchat:r", f"webchat:r:m{n}"), store.turn() as turn:
        await turn.load_state("webchat:r")
        await turn.save_state("webchat:r", ConversationState(flow="faq"))
        await turn.remember(f"webchat:r:m{n}", [Reply(f"answer {n}")])
        await turn.commit()


async def test_the_purge_blanks_replies_past_the_redelivery_window(
    database_settings: Settings,
) -> None:
    """The embedded store keeps a row per message for the dedupe window, as before; the purge
    empties its replies once the re-delivery window is over, as Redis lets them expire."""
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        quick = DatabaseConversationStore(
            store.db, store.cipher, store.tz, redelivery=timedelta(seconds=1)
        )
        await answered(quick, 1)
        await asyncio.sleep(1.2)
        await answered(quick, 2)
        await purge_expired(store.db, redelivery=timedelta(seconds=1))
        async with store.db.session() as session:
            rows = {r.key: r.replies for r in await session.scalars(select(InboundDedupe))}
        assert rows["webchat:r:m1"] == b"" and rows["webchat:r:m2"] != b""
        async with quick.turn() as turn:
            await turn.load_state("webchat:r")
            assert isinstance(await turn.recall("webchat:r:m1"), Forgotten)
            assert await turn.recall("webchat:r:m2") == [Reply("answer 2")]


async def test_database_store_reads_the_state_and_the_message_in_one_statement(
    database_settings: Settings,
) -> None:
    """A step of a message with an id reads the conversation's state and what is remembered of
    the message in one SELECT (the conversation's lock said which message it answers), and a
    re-delivery read that way gets the same replies and writes nothing."""
    async with open_minyi(database_settings) as runtime:
        citizen = Citizen(runtime, sender="one-read")
        await citizen.say("1", message_id="m1")
        async with statements(runtime.db) as said:
            answer = await citizen.say("4", message_id="m2")
            first = list(said)
            said.clear()
            assert await citizen.say("4", message_id="m2") == answer
            again = list(said)
    reads = [s for s in first if s.startswith("SELECT") and "PG_ADVISORY" not in s]
    assert len(reads) == 1 and "INBOUND_DEDUPE" in reads[0] and "CONVERSATIONS" in reads[0]
    assert any(s.startswith("UPDATE CONVERSATIONS") for s in first)
    assert any(s.startswith("INSERT INTO INBOUND_DEDUPE") for s in first)
    assert [s for s in again if s.startswith("SELECT") and "PG_ADVISORY" not in s] == reads
    assert not [s for s in again if s.startswith(("UPDATE", "INSERT"))]


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


async def test_an_idle_redis_conversation_is_its_state_and_one_set_of_marks(
    redis_runtime: Minyi,
) -> None:
    """Per message only an 8-byte mark stays for the day; its replies go after the re-delivery
    window (a key per message was 400 bytes for a day)."""
    store = redis_runtime.store
    assert isinstance(store, RedisConversationStore)
    citizen = Citizen(redis_runtime, sender="idle-1")
    for n, text in enumerate(("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。")):
        await citizen.say(text, message_id=f"m{n}")
    redis, key = store.redis, "webchat:idle-1"
    names = {k.decode() async for k in redis.scan_iter(match=f"{store.keys.prefix}*idle-1*")}
    replies = {store.keys.seen(f"{key}:m{n}") for n in range(3)}
    # The turns counted against the sender's rate, gone with the rate's window (a minute).
    counted = {n for n in names if n.startswith(store.keys.prefix + "turns")}
    assert {store.keys.turns_once(key, f"m{n}") for n in range(3)} < counted
    assert len(counted) in (4, 5)  # and one counter per window: the turns may straddle two
    for name in counted:
        assert 0 < await redis.pttl(name) <= redis_runtime.settings.rate_sender[1] * 1000
    names -= counted
    assert names == {store.keys.conversation(key), store.keys.handled(key)} | replies
    marks = await redis.zrange(store.keys.handled(key), 0, -1)
    assert len(marks) == 3 and all(len(m) == 8 for m in marks)
    for name in replies:
        assert 0 < await redis.pttl(name) <= store.redelivery.total_seconds() * 1000
    assert 0 < await redis.pttl(store.keys.handled(key)) <= store.dedupe_ttl.total_seconds() * 1000
    for name in replies:  # the re-delivery window is over
        await redis.delete(name)
    for n, text in ((1, "4"), (2, "小区门口的路灯坏了一个多月，晚上很黑。")):
        assert "不会重复办理" in await citizen.say(text, message_id=f"m{n}")
    # Neither took a step: the form still asks for the address after the description.
    assert "有照片" in await citizen.say("XX区幸福路12号", message_id="m3")


async def test_marks_past_the_dedupe_window_leave_the_set(redis_runtime: Minyi) -> None:
    store = redis_runtime.store
    assert isinstance(store, RedisConversationStore)
    quick = RedisConversationStore(
        store.db, store.cipher, store.tz, store.redis, store.keys, dedupe_ttl=timedelta(seconds=1)
    )
    for n in range(5):  # the set outlives each mark: every write renews it
        await answered(quick, n)
        await asyncio.sleep(0.6)
    marks = store.keys.handled("webchat:r")
    assert 1 <= await store.redis.zcard(marks) < 5
    assert await quick.recall("webchat:r:m0") is None  # forgotten entirely: past the day
    assert await quick.recall("webchat:r:m4") == [Reply("answer 4")]


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
