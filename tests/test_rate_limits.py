"""The counters behind the rate limits, in Redis and in process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from bot.app.wiring import Minyi, open_minyi
from channels.base import Throttled
from storage.conversations import RedisConversationStore
from storage.keys import Keys
from storage.ratelimit import LocalRateLimit, RedisRateLimit, SenderLimited, SenderRate

from .conftest import REDIS_URL, Citizen, settings_for


@pytest.fixture
async def redis_runtime(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Minyi]:
    async with open_minyi(settings_for(request, "postgres+redis", tmp_path)) as runtime:
        yield runtime


async def test_redis_counts_a_window_and_a_redelivery_once(redis_prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        limits = RedisRateLimit(redis, Keys(redis_prefix), clock=lambda: 1_000_000.0)
        assert [await limits.hit("sender:a", 2, 60, once=f"m{n}") for n in (1, 2)] == [None, None]
        assert await limits.hit("sender:a", 2, 60, once="m2") is None  # re-delivered: same verdict
        assert await limits.hit("sender:a", 2, 60, once="m3") == 20.0  # the window ends in 20 s
        assert await limits.hit("sender:b", 2, 60, once="m1") is None  # another sender
    finally:
        await redis.aclose()


async def test_a_limiter_that_cannot_count_lets_the_request_through() -> None:
    """Redis gone (or a client failing mid-failover): the limiter must not be what refuses a
    citizen; the turn then meets Redis itself and answers as it does for any outage."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        limits = RedisRateLimit(redis, Keys("gone:"))
        assert await limits.hit("sender:a", 1, 60, once="m1") is None
        assert await limits.hit("sender:a", 1, 60, once="m2") is None
    finally:
        await redis.aclose()


async def test_in_process_counts_the_same_way() -> None:
    limits = LocalRateLimit(clock=lambda: 1_000_000.0)
    assert await limits.hit("address:1", 1, 60) is None
    assert await limits.hit("address:1", 1, 60) == 20.0


# -- a citizen's turns (MINYI_RATE_SENDER), on every backend ----------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"])
async def test_a_sender_over_the_rate_is_turned_away_and_a_redelivery_keeps_its_verdict(
    request: pytest.FixtureRequest, tmp_path: object, backend: str
) -> None:
    """With Redis the lock's script counts the turn (one round trip for both); without it the
    limiter in process does. Either way: over the rate, nothing runs; a re-delivered message
    gets the verdict its first delivery got; another sender is not held back."""
    settings = settings_for(request, backend, tmp_path).replace(rate_sender=(2, 60))
    async with open_minyi(settings) as minyi:
        citizen = Citizen(minyi, sender="hasty-1")
        first = await citizen.say("1", message_id="m1")
        assert "（1/6）" in first
        assert "（2/6）" in await citizen.say("4", message_id="m2")
        with pytest.raises(Throttled) as over:
            await citizen.say("小区门口的路灯坏了一个多月，晚上很黑。", message_id="m3")
        assert 1 <= over.value.retry_after <= 60
        with pytest.raises(Throttled):  # WeChat sends it again: turned away again
            await citizen.say("小区门口的路灯坏了一个多月，晚上很黑。", message_id="m3")
        assert await citizen.say("1", message_id="m1") == first  # allowed then: the same replies
        assert "（1/6）" in await Citizen(minyi, sender="calm-1").say("1", message_id="m1")
        if backend == "sqlite":
            return
        store = minyi.store
        assert isinstance(store, RedisConversationStore)
        key = "webchat:hasty-1"
        # m3 ran nothing: neither handled nor holding the lock.
        assert await store.redis.zcard(store.keys.handled(key)) == 2
        assert not await store.redis.exists(store.keys.lock(key))
        # Counted by the lock's script, in the conversation's slot; no separate counter.
        prefix = store.keys.prefix
        names = [k.decode() async for k in store.redis.scan_iter(match=f"{prefix}*hasty-1*")]
        counters = [n for n in names if n.startswith(f"{prefix}turns:")]
        assert counters and all(
            key_slot(n.encode()) == key_slot(b"{webchat:hasty-1}") for n in counters
        )
        assert not [k async for k in store.redis.scan_iter(match=f"{prefix}rate:*")]


async def test_a_turn_waiting_for_the_lock_is_counted_once(redis_runtime: Minyi) -> None:
    """The lock's script is run again every few milliseconds while another turn holds the
    conversation: only the first run counts. A lock of another conversation counts nothing."""
    store = redis_runtime.store
    assert isinstance(store, RedisConversationStore)
    key = "webchat:waiting-1"
    holder = RedisConversationStore(
        store.db, store.cipher, store.tz, store.redis, store.keys, lock_ttl=5.0
    )
    asked = SenderRate(key, "", 1, 60)  # no message id: each run of the script would count
    async with holder.lock(key):
        with store.counting(asked):
            waiting = asyncio.ensure_future(_locked(store, key))
            async with store.lock("webchat:someone-else"):
                pass  # not this turn's conversation: not counted, not refused
            await asyncio.sleep(0.3)  # some thirty tries while the holder works
    await waiting
    counters = [k async for k in store.redis.scan_iter(match=f"{store.keys.prefix}turns:*")]
    assert len(counters) == 1 and counters[0].decode().startswith(store.keys.turns(key, 0)[:-1])
    assert int(await store.redis.get(counters[0])) == 1
    with store.counting(SenderRate(key, "m2", 1, 60)), pytest.raises(SenderLimited):
        async with store.lock(key):
            pass


async def _locked(store: RedisConversationStore, key: str) -> None:
    async with store.lock(key):
        pass
