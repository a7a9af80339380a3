"""The single-server pool (storage/redis_connect.py `QueueingPool`): past its size a caller
waits for a connection instead of being refused, and gives up after its timeout."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from storage.redis_connect import QueueingPool

from .conftest import REDIS_URL


async def test_a_caller_past_the_pool_size_waits_for_a_connection(redis_prefix: str) -> None:
    pool = QueueingPool.from_url(REDIS_URL, max_connections=2, timeout=5)
    try:
        first, second = await pool.get_connection(), await pool.get_connection()
        third = asyncio.ensure_future(pool.get_connection())
        await asyncio.sleep(0.1)
        assert not third.done()  # waiting, not refused
        await pool.release(first)
        assert await asyncio.wait_for(third, 1) is first  # the freed one, reused
        await pool.release(second)
        await pool.release(await third)
        # All back: two at once again, without waiting.
        both = [await asyncio.wait_for(pool.get_connection(), 0.5) for _ in range(2)]
        for connection in both:
            await pool.release(connection)
    finally:
        await pool.aclose()


async def test_a_caller_gives_up_after_the_timeout(redis_prefix: str) -> None:
    pool = QueueingPool.from_url(REDIS_URL, max_connections=1, timeout=0.2)
    try:
        held = await pool.get_connection()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await pool.get_connection()
        await pool.release(held)
        await pool.release(await asyncio.wait_for(pool.get_connection(), 0.5))
    finally:
        await pool.aclose()


async def test_a_failed_connect_gives_its_place_back() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    pool = QueueingPool.from_url(
        f"redis://127.0.0.1:{port}/0", max_connections=1, timeout=0.2, socket_connect_timeout=0.5
    )
    try:
        for _ in range(3):  # each failure frees its place: never "No connection available"
            with pytest.raises(RedisConnectionError, match=r"connecting to"):
                await pool.get_connection()
        # ... once: redis-py gives back a connection that failed to connect itself, and a
        # place freed twice would let the pool grow past its size.
        assert not pool._free.locked()
        await pool._free.acquire()
        assert pool._free.locked()
    finally:
        await pool.aclose()
