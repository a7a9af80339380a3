"""Rate limits: at most N hits per window for one key (a sender, a client address).

With Redis, one atomic INCR per hit on a key that expires with its window, so every web process
counts together; without Redis (the embedded default, one process) the same in process memory.
A fixed window lets a burst of up to 2N straddle a boundary, which is fine for turning away a
flood, and costs one round trip. A citizen's turns (MINYI_RATE_SENDER) with the Redis conversation
store cost none of their own: the script that takes the conversation's lock counts them
(`SenderRate`, storage/conversations.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from .keys import Keys
from .scripts import Script

# INCR and set the expiry on the first hit, in one step: a crash between the two would leave a
# counter that never expires. A re-delivery of the same message (WeChat sends one up to four
# times) is not counted again: it gets the count, and so the verdict, its first delivery got.
_HIT = """
if ARGV[2] ~= '' then
  local prior = redis.call('GET', KEYS[2])
  if prior then return tonumber(prior) end
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], n, 'PX', ARGV[1]) end
return n
"""

log = logging.getLogger(__name__)


class RateLimit(Protocol):
    async def hit(self, key: str, limit: int, window: int, once: str = "") -> float | None:
        """Count a hit; None when it is allowed, else the seconds until the window ends.
        `once` names the message: a hit with a name already counted is not counted again."""
        ...


class LocalRateLimit:
    """One process's counters (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}  # (key, once) -> (slot, count)

    async def hit(self, key: str, limit: int, window: int, once: str = "") -> float | None:
        now = self.clock()
        slot = int(now // window)
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= slot - 1}
            self._seen = {k: v for k, v in self._seen.items() if v[0] >= slot - 1}
        prior = self._seen.get((key, once)) if once else None
        if prior is not None:
            count = prior[1]
        else:
            count = self._counts.get((key, slot), 0) + 1
            self._counts[(key, slot)] = count
            if once:
                self._seen[(key, once)] = (slot, count)
        if count <= limit:
            return None
        return (slot + 1) * window - now


class RedisRateLimit:
    """Counters shared by every process, in Redis."""

    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self.redis, self.keys, self.clock = redis, keys, clock
        self._script = Script(redis, _HIT)

    async def hit(self, key: str, limit: int, window: int, once: str = "") -> float | None:
        now = self.clock()
        slot = int(now // window)
        try:
            count = int(
                await self._script(
                    keys=[self.keys.rate(key, slot), self.keys.rate_once(key, once)],
                    args=[window * 1000, once],
                )
            )
        except Exception as exc:  # redis-py raises more than RedisError while a primary fails over
            # A limiter that cannot count lets the request through: it guards the service, and
            # must never be the reason a citizen is refused.
            log.warning("rate limit not counted (%s: %s); let through", type(exc).__name__, exc)
            return None
        if count <= limit:
            return None
        return (slot + 1) * window - now


@dataclass(frozen=True)
class SenderRate:
    """A citizen's turn, to be counted against the sender's rate (MINYI_RATE_SENDER) by the
    script that takes its conversation's lock: one Redis round trip for both
    (`RedisConversationStore.counting`)."""

    conversation: str  # the conversation's key, `channel:sender`
    message_id: str  # a re-delivery of it gets its first count ('' = none: every one counts)
    limit: int
    window: int  # seconds


class SenderLimited(Exception):
    """Over the sender's rate: the turn was turned away before it took the lock."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"over the sender's rate for {retry_after:.1f} s")
        self.retry_after = retry_after


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
