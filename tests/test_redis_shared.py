"""The connection that the single-server pool's scripts share (storage/redis_connect.py
`SharedConnection`): the commands given in one pass of the loop go out in one write, each caller
gets its own reply whatever the others' fate, and a connection lost, killed or closed costs
the commands in flight on it and nothing after."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage import redis_connect
from storage.redis_connect import QueueingPool, SharedConnection, connect
from storage.scripts import Script, pack

from .conftest import REDIS_URL

_ECHO = "return ARGV[1]"
_SET = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"
# Busy for a while (~50 ms here), so that a reply is still to come when a test acts.
_SLOW = "local n = 0 for i = 1, tonumber(ARGV[2]) do n = n + 1 end return ARGV[1]"
BUSY = 8_000_000
# The client's socket timeout: far above any reply here but the busy script's.
TIMEOUT = 2.0


@pytest.fixture(params=["hiredis", "redis-py"])
async def client(
    redis_prefix: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Redis]:
    """The pool's client, its shared connection reading replies with hiredis (the `speed`
    extra) or, without it, through redis-py's parser."""
    if request.param == "redis-py":
        monkeypatch.setattr(redis_connect, "hiredis", None)
    elif redis_connect.hiredis is None:
        pytest.skip("hiredis (the `speed` extra) is not installed")
    client = connect(REDIS_URL, socket_timeout=TIMEOUT)
    yield client
    await client.aclose()


@pytest.fixture
async def other(redis_prefix: str) -> AsyncIterator[Redis]:
    other = Redis.from_url(REDIS_URL)
    yield other
    await other.aclose()


def _pool(client: Redis) -> QueueingPool:
    pool = client.connection_pool
    assert isinstance(pool, QueueingPool)
    return pool


async def _shared(client: Redis) -> SharedConnection:
    pool = _pool(client)
    await pool.exchange(pack("PING"))  # made and connected on first use
    assert pool._shared is not None
    return pool._shared


def _count_writes(shared: SharedConnection) -> list[bytes]:
    writes: list[bytes] = []
    writer = shared.connection._writer  # type: ignore[attr-defined]
    write = writer.write

    def counted(data: Any) -> None:
        writes.append(bytes(data))
        write(data)

    writer.write = counted
    return writes


async def _client_id(client: Redis) -> int:
    return int(await _pool(client).exchange(pack("CLIENT", "ID")))


async def test_callers_of_one_pass_share_a_write_and_each_gets_its_own_reply(
    client: Redis,
) -> None:
    echo = Script(client, _ECHO)
    await echo([], ["load"])  # loaded (NOSCRIPT is not this test's)
    writes = _count_writes(await _shared(client))
    pooled = list(_pool(client)._available_connections)
    replies = await asyncio.gather(*(echo([], [f"caller {n}"]) for n in range(50)))
    assert replies == [f"caller {n}".encode() for n in range(50)]
    assert len(writes) == 1
    # Nothing more was taken from the pool: every caller used the shared connection.
    assert _pool(client)._available_connections == pooled
    assert not _pool(client)._in_use_connections


async def test_a_commands_error_is_its_callers_alone(client: Redis) -> None:
    pool = _pool(client)
    before = await _client_id(client)
    got = await asyncio.gather(
        pool.exchange(pack("ECHO", "first")),
        pool.exchange(pack("EVAL", "return redis.call('INCRBY', 'x', 'no number')", 0)),
        pool.exchange(pack("ECHO", "third")),
        return_exceptions=True,
    )
    assert got[0] == b"first" and got[2] == b"third"
    assert isinstance(got[1], ResponseError) and "not an integer" in str(got[1])
    assert await _client_id(client) == before  # the same connection went on


async def test_a_cancelled_caller_does_not_take_another_callers_reply(client: Redis) -> None:
    pool = _pool(client)
    await _shared(client)
    slow = asyncio.ensure_future(pool.exchange(pack("EVAL", _SLOW, 0, "slow", BUSY)))
    await asyncio.sleep(0.005)  # written, and Redis busy with it
    slow.cancel()
    assert await pool.exchange(pack("ECHO", "mine")) == b"mine"
    assert slow.cancelled()


async def test_the_batch_goes_out_when_the_caller_that_started_it_is_cancelled(
    client: Redis,
) -> None:
    pool = _pool(client)
    await _shared(client)
    first = asyncio.ensure_future(pool.exchange(pack("ECHO", "first")))
    others = [asyncio.ensure_future(pool.exchange(pack("ECHO", f"n{n}"))) for n in range(3)]
    first.cancel()
    assert await asyncio.gather(*others) == [b"n0", b"n1", b"n2"]


async def test_a_connection_lost_in_flight_fails_those_commands_and_the_next_connects_afresh(
    client: Redis,
) -> None:
    pool = _pool(client)
    shared = await _shared(client)
    before = await _client_id(client)
    in_flight = [asyncio.ensure_future(pool.exchange(pack("EVAL", _SLOW, 0, "slow", BUSY)))]
    in_flight += [asyncio.ensure_future(pool.exchange(pack("ECHO", f"n{n}"))) for n in range(3)]
    await asyncio.sleep(0.005)  # sent, and Redis busy with the first
    shared.connection._writer.transport.abort()  # type: ignore[attr-defined]
    for call in in_flight:
        with pytest.raises(RedisConnectionError):
            await call
    assert await pool.exchange(pack("ECHO", "after")) == b"after"
    assert await _client_id(client) != before


async def test_a_script_whose_connection_is_lost_in_flight_is_made_again(
    client: Redis, other: Redis, redis_prefix: str
) -> None:
    """The script's caller never sees the loss: it is made again the redis-py way."""
    put = Script(client, _SET)
    key = redis_prefix + "shared:put"
    await put([key], ["warm"])
    shared = await _shared(client)
    slow = asyncio.ensure_future(_pool(client).exchange(pack("EVAL", _SLOW, 0, "s", BUSY)))
    call = asyncio.ensure_future(put([key], ["value"]))
    await asyncio.sleep(0.005)  # sent, behind a command Redis is busy with
    shared.connection._writer.transport.abort()  # type: ignore[attr-defined]
    assert await call == b"value"
    assert await other.get(key) == b"value"
    with pytest.raises(RedisConnectionError):  # not a script: the loss is its caller's
        await slow


async def test_a_connection_the_server_closed_while_idle_is_connected_afresh(
    client: Redis, other: Redis, redis_prefix: str
) -> None:
    """Killed by the server (a restart, its idle timeout) between batches: the next batch is
    not lost on it, it goes out on a new connection."""
    before = await _client_id(client)
    assert await other.client_kill_filter(_id=before) == 1
    await asyncio.sleep(0.05)  # the close has reached this side
    writes = _count_writes(await _shared(client))  # PING: through a fresh connection
    assert await _client_id(client) != before
    assert len(writes) == 1  # the CLIENT ID after it, on that connection


async def test_closing_the_pool_fails_the_waiting_and_closes_the_connection(
    client: Redis, other: Redis
) -> None:
    pool = _pool(client)
    shared = await _shared(client)
    own = await _client_id(client)
    waiting = asyncio.ensure_future(pool.exchange(pack("EVAL", _SLOW, 0, "slow", BUSY)))
    await asyncio.sleep(0.005)
    await pool.disconnect()
    with pytest.raises(RedisConnectionError):
        await waiting
    assert not shared.connection.is_connected
    await asyncio.sleep(0.05)
    assert own not in [int(c["id"]) for c in await other.client_list()]


@pytest.mark.parametrize("way", ["hiredis", "redis-py"])
async def test_a_reply_later_than_the_socket_timeout_fails_those_waiting_and_no_more(
    redis_prefix: str, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply that does not come within the socket timeout (a server stalled, a network
    partition) fails the commands in flight as a timeout; the next ones go out on a fresh
    connection, so no late reply is ever taken for another command's."""
    if way == "redis-py":
        monkeypatch.setattr(redis_connect, "hiredis", None)
    client = connect(REDIS_URL, socket_timeout=0.02)
    try:
        pool = _pool(client)
        before = await _client_id(client)
        slow = asyncio.ensure_future(pool.exchange(pack("EVAL", _SLOW, 0, "slow", BUSY)))
        behind = asyncio.ensure_future(pool.exchange(pack("ECHO", "behind")))
        for call in (slow, behind):
            with pytest.raises((RedisTimeoutError, RedisConnectionError)):
                await call
        await asyncio.sleep(0.2)  # the busy script is done
        assert await pool.exchange(pack("ECHO", "after")) == b"after"
        assert await _client_id(client) != before
    finally:
        await client.aclose()


async def test_replies_of_every_kind_reach_their_callers(client: Redis) -> None:
    """Errors, nested errors, numbers, nil and arrays, in one batch, each to its caller."""
    pool = _pool(client)
    calls = [
        pool.exchange(pack("EVALSHA", "0" * 40, 0)),
        pool.exchange(pack("EVAL", "return {1, 'two', false, {3}}", 0)),
        pool.exchange(pack("EVAL", "return redis.error_reply('MINE went wrong')", 0)),
        pool.exchange(pack("EVAL", "return nil", 0)),
        pool.exchange(pack("EVAL", "return redis.status_reply('FINE')", 0)),
        pool.exchange(pack("ECHO", "路灯".encode())),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[0], NoScriptError)
    assert results[1] == [1, b"two", None, [3]]
    assert isinstance(results[2], ResponseError) and "went wrong" in str(results[2])
    assert results[3] is None
    assert results[4] == b"FINE"
    assert results[5] == "路灯".encode()
