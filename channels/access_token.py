"""A provider's access token, one for every process, fetched by one caller at a time.

WeChat and WeCom invalidate a token when another is fetched, so processes that each fetched
their own would keep breaking one another. The token lives in the shared cache (Redis, or the
database when embedded); whoever finds it missing or refused takes the shared lock, looks again,
and only then fetches, so a crowd of callers causes one fetch. Each provider says how to fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .base import DeliveryFailed, SharedCache

log = logging.getLogger(__name__)

# Held while fetching; longer than one fetch may take (the API timeout).
LOCK_SECONDS = 15.0
# fetch(force) → (token, seconds to keep it). `force` asks for a new token even if the
# provider would hand back the current one (WeChat's stable_token does).
Fetch = Callable[[bool], Awaitable[tuple[str, float]]]


class AccessTokens:
    def __init__(self, shared: SharedCache, key: str, fetch: Fetch, *, name: str) -> None:
        self.shared = shared
        self.key = key
        self.fetch = fetch
        self.name = name

    async def current(self) -> str:
        try:
            token = await self.shared.get(self.key)
        except Exception as exc:
            raise DeliveryFailed(
                f"shared cache unavailable ({type(exc).__name__})", retry_after=5
            ) from exc
        return token or await self.refresh()

    async def refresh(self, stale: str | None = None) -> str:
        """A token other than `stale` (the one just refused), fetched at most once."""
        try:
            async with self.shared.lock(self.key, LOCK_SECONDS):
                cached = await self.shared.get(self.key)
                if cached and cached != stale:
                    return cached  # another caller refreshed it while we waited for the lock
                token, ttl = await self.fetch(False)
                if token == stale:
                    # The provider handed back the token it just refused: ask for a new one.
                    token, ttl = await self.fetch(True)
                await self.shared.set(self.key, token, ttl)
                log.info("%s access token refreshed (valid %.0f s)", self.name, ttl)
                return token
        except DeliveryFailed:
            raise
        except Exception as exc:  # the lock timed out, or the cache is down
            raise DeliveryFailed(
                f"access token unavailable ({type(exc).__name__})", retry_after=5
            ) from exc


def keep_for(expires_in: float) -> float:
    """Seconds to keep a token the provider says lives `expires_in`: a little less, so one about
    to expire is fetched again early."""
    return max(expires_in - 300, min(expires_in, 60.0))
