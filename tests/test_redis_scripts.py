"""Lua scripts by SHA1 (storage/scripts.py): a server that forgot them (a restart, a failover
to a replica that never saw them, SCRIPT FLUSH) is given them again, and the call still answers."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from channels.base import Throttled
from storage import scripts
from storage.redis_connect import QueueingPool, connect
from storage.scripts import Script, pack

from .conftest import REDIS_URL, Citizen, settings_for

_COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_a_script_runs_by_its_sha_and_again_after_a_flush(
    redis: Redis, redis_prefix: str
) -> None:
    count = Script(redis, _COUNT)
    key = redis_prefix + "scripts:count"
    assert await count([key], [2]) == 2
    assert await redis.script_exists(count.sha) == [True]
    # Every client that runs scripts here loads them again on NOSCRIPT (redis-py's own
    # Script does as well), so flushing the shared test server harms no other test.
    await redis.script_flush()
    assert await redis.script_exists(count.sha) == [False]
    assert await count([key], [3]) == 5  # NOSCRIPT, loaded, run once: not twice, not lost
    assert await redis.script_exists(count.sha) == [True]


async def test_a_script_error_is_the_callers(redis: Redis, redis_prefix: str) -> None:
    """Only NOSCRIPT is taken care of; an error of the script itself reaches the caller."""
    broken = Script(redis, "return redis.call('INCRBY', KEYS[1], 'not a number')")
    with pytest.raises(Exception, match="not an integer"):
        await broken([redis_prefix + "scripts:broken"])


async def test_turns_go_on_after_the_server_forgot_the_scripts(
    request: pytest.FixtureRequest, tmp_path: object, redis: Redis
) -> None:
    """The turn's scripts (rate limit, lock and load, commit) all find their way back, and
    count what they counted before."""
    settings: Settings = settings_for(request, "postgres+redis", tmp_path)
    async with open_minyi(settings.replace(rate_sender=(3, 60))) as minyi:
        citizen = Citizen(minyi, sender="flushed-1")
        assert "（1/6）" in await citizen.say("1", message_id="m1")
        await redis.script_flush()
        assert "（2/6）" in await citizen.say("4", message_id="m2")
        await redis.script_flush()
        described = await citizen.say("小区门口的路灯坏了一个多月，晚上很黑。", message_id="m3")
        assert "（3/6）" in described
        await redis.script_flush()
        with pytest.raises(Throttled):  # the fourth message within the minute
            await citizen.say("幸福路12号东门", message_id="m4")
        assert await citizen.say("小区门口的路灯坏了一个多月，晚上很黑。", message_id="m3") == (
            described  # a re-delivery: its first verdict and the same replies
        )


class _Level(enum.IntEnum):
    HIGH = 3


class _Word(enum.StrEnum):
    YES = "是"


@pytest.mark.parametrize("way", ["hiredis", "python"])
def test_a_command_is_packed_as_redis_py_packs_it(way: str, monkeypatch: Any) -> None:
    """The direct way's packing (storage/scripts.py `pack`) sends what redis-py would, in C
    with hiredis and without it."""
    if way == "python":
        monkeypatch.setattr(scripts, "_pack_command", None)
    elif scripts._pack_command is None:
        pytest.skip("hiredis (the `speed` extra) is not installed")
    args = ("EVALSHA", "a" * 40, 2, "minyi:{webchat:张三}", b"\x00\xff", 6000, 86400.0, -1, "")
    args += (0.1, 10**20, _Level.HIGH, _Word.YES)
    assert pack(*args) == b"".join(Connection().pack_command(*args))
    with pytest.raises(TypeError):
        pack("EVALSHA", True)


async def test_a_script_goes_on_after_its_connection_was_dropped(
    redis: Redis, redis_prefix: str
) -> None:
    """On the single-server pool a script makes its round trip directly on the connection the
    pool's callers share; one the server closed is found out there and connected afresh, and
    the call is counted once."""
    client = connect(REDIS_URL)
    pool = client.connection_pool
    assert isinstance(pool, QueueingPool)
    try:
        count = Script(client, _COUNT)
        key = redis_prefix + "scripts:dropped"
        assert await count([key], [1]) == 1
        own_id = await pool.exchange(pack("CLIENT", "ID"))  # asked on that shared connection
        assert await redis.client_kill_filter(_id=own_id) == 1
        assert await count([key], [1]) == 2
        assert pool._shared is not None and pool._shared.connection.is_connected  # afresh
        assert await redis.get(key) == b"2"
    finally:
        await client.aclose()
