"""Lua scripts run by their SHA1, the cheapest way redis-py asyncio offers that keeps its
reconnect and retry.

redis-py's own `register_script` object does the same (EVALSHA, then SCRIPT LOAD and once more on
NOSCRIPT), but reaches the connection through `evalsha`, `_evalsha` and an import on every call;
a turn runs two or three scripts, and at a few hundred turns a second the web process is
CPU-bound in Python (benchmarks/redis_calls.py measures the ways). `execute_command` is the one
entry every redis-py command goes through — single server, Sentinel primary or Cluster (which
routes EVALSHA by its keys) — so the pool, the retry on a dropped connection and the following
of a failover stay what they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class Script:
    """One Lua script for one client: `await script(keys, args)` returns what the script
    returns."""

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg] = ()) -> Any:
        try:
            return await self.redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # A server that has not seen it yet: a restart, a failover to a replica, a new
            # cluster node, SCRIPT FLUSH. (On a cluster SCRIPT LOAD goes to every primary.)
            await self.redis.script_load(self.source)
            return await self.redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
