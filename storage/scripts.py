"""Lua scripts run by their SHA1, the cheapest way that keeps redis-py's reconnect and retry.

redis-py's own `register_script` object does the same (EVALSHA, then SCRIPT LOAD and once more on
NOSCRIPT), but reaches the connection through `evalsha`, `_evalsha` and an import on every call;
a turn runs two scripts, and at a few hundred turns a second the web process is CPU-bound in
Python (benchmarks/redis_calls.py measures the ways).

On a single server (`QueueingPool`, storage/redis_connect.py) the call is packed here and makes
its round trip directly on the connection the pool's callers share (`QueueingPool.exchange`,
pipelined: the turns that reach a script together share a write and a read): `execute_command`'s
layers — the generic encoder, the retry wrapper, the client's observability hooks, a task per
socket write — cost twice what the round trip itself does. A dropped connection or a timeout on
that way is not the caller's: the call is made again through `execute_command`, whose retry and
reconnect are redis-py's. Elsewhere (Sentinel, Cluster, a client of another pool) every call goes
through `execute_command`, the one entry every redis-py command goes through — Cluster routes
EVALSHA by its keys, Sentinel follows a failover.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_connect import QueueingPool

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:  # the `speed` extra: the same bytes, made in C (a turn's state makes long commands)
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - hiredis is optional
    _pack_command = None

Arg = str | bytes | int | float


def pack(*args: Arg) -> bytes:
    """One command in Redis's protocol, its arguments encoded as redis-py encodes them (text in
    UTF-8, numbers as their repr; a bool refused)."""
    if _pack_command is not None:
        try:
            return _pack_command(args)
        except TypeError:
            pass  # hiredis takes only the exact types: a subclass is encoded, a bool refused below
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)  # exact types first: this runs for every argument of every call
        if kind is str:
            data = arg.encode()  # type: ignore[union-attr]
        elif kind is bytes:
            data = arg
        elif kind is int or kind is float:
            data = repr(arg).encode()
        else:
            data = _encoded(arg)
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


def _encoded(arg: object) -> bytes:
    """A subclass of str, bytes, int or float (an enum's value, a numpy number): as its base."""
    if isinstance(arg, bool):
        raise TypeError("a bool is no Redis argument: send 0 or 1")
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bytes | bytearray | memoryview):
        return bytes(arg)
    if isinstance(arg, int | float):
        return repr(arg).encode()
    raise TypeError(f"{type(arg).__name__} is no Redis argument")


class Script:
    """One Lua script for one client: `await script(keys, args)` returns what the script
    returns."""

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        pool = getattr(redis, "connection_pool", None)
        # The direct way only for a client that shares its pool's connections (not a
        # single-connection client, which holds one of its own).
        direct = isinstance(pool, QueueingPool) and getattr(redis, "connection", None) is None
        self._pool: QueueingPool | None = pool if direct else None

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        if self._pool is not None:
            try:
                return await self._pool.exchange(pack("EVALSHA", self.sha, len(keys), *keys, *args))
            except NoScriptError:
                await self.redis.script_load(self.source)
            except (RedisConnectionError, RedisTimeoutError):
                pass  # the connection was dropped: again below, with redis-py's retry
        try:
            return await self.redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A server that has not seen it yet: a restart, a failover to a replica, a new
            # cluster node, SCRIPT FLUSH. (On a cluster SCRIPT LOAD goes to every primary.)
            await self.redis.script_load(self.source)
            return await self.redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
