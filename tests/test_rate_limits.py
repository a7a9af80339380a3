"""The counters behind the rate limits, in Redis and in process."""

from __future__ import annotations

import socket

from redis.asyncio import Redis

from storage.keys import Keys
from storage.ratelimit import LocalRateLimit, RedisRateLimit

from .conftest import REDIS_URL


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
