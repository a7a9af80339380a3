"""Rate limits: at most N hits per window for one key (a sender, a client address).

With Redis, one atomic INCR per hit on a key that expires with its window, so every web process
counts together; without Redis (the embedded default, one process) the same in process memory.
A fixed window lets a burst of up to 2N straddle a boundary, which is fine for turning away a
flood, and costs one round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from .keys import Keys

# INCR and set the expiry on the first hit, in one step: a crash between the two would leave a
# counter that never expires.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RateLimit(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> float | None:
        """Count a hit; None when it is allowed, else the seconds until the window ends."""
        ...


class LocalRateLimit:
    """One process's counters (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, key: str, limit: int, window: int) -> float | None:
        now = self.clock()
        slot = int(now // window)
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= slot - 1}
        count = self._counts.get((key, slot), 0) + 1
        self._counts[(key, slot)] = count
        if count <= limit:
            return None
        return (slot + 1) * window - now


class RedisRateLimit:
    """Counters shared by every process, in Redis."""

    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self.redis, self.keys, self.clock = redis, keys, clock
        self._script = redis.register_script(_HIT)

    async def hit(self, key: str, limit: int, window: int) -> float | None:
        now = self.clock()
        slot = int(now // window)
        count = int(await self._script(keys=[self.keys.rate(key, slot)], args=[window * 1000]))
        if count <= limit:
            return None
        return (slot + 1) * window - now


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
