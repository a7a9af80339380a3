"""The official account's access token: one for every process, fetched by one caller at a time.

WeChat invalidates a token when another is fetched, so processes that each fetched their own
would keep breaking one another (40001). The token lives in the shared cache (Redis, or the
database when embedded); whoever finds it missing or refused takes the shared lock, looks
again, and only then fetches, so a crowd of callers causes one fetch. `cgi-bin/stable_token`
in normal mode also hands every caller the same token while it is valid.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from ..base import DeliveryFailed, SharedCache

log = logging.getLogger(__name__)

# WeChat's "this access token is invalid / expired": refresh once, then try the call once more.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Held while fetching; longer than one fetch may take (the API timeout).
LOCK_SECONDS = 15.0
# What an operator must fix when WeChat refuses to give a token at all.
_FETCH_HINTS = {
    40001: "check MINYI_WECHAT_APP_SECRET",
    40013: "check MINYI_WECHAT_APP_ID",
    40125: "check MINYI_WECHAT_APP_SECRET",
    40164: "add this server's IP address to the account's IP whitelist",
}
_RETRY_AFTER = {-1: 5.0, 45009: 3600.0, 45011: 60.0}


class AccessTokens:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        shared: SharedCache,
        *,
        api_base: str,
        app_id: str,
        app_secret: str | None,
        timeout: float,
    ) -> None:
        self.http = http
        self.shared = shared
        self.url = f"{api_base.rstrip('/')}/cgi-bin/stable_token"
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.key = f"wechat:access_token:{app_id}"

    async def current(self) -> str:
        try:
            token = await self.shared.get(self.key)
        except Exception as exc:
            raise DeliveryFailed(
                f"shared cache unavailable ({type(exc).__name__})", retry_after=5
            ) from exc
        return token or await self.refresh()

    async def refresh(self, stale: str | None = None) -> str:
        """A token other than `stale` (the one WeChat just refused), fetched at most once."""
        if not self.app_secret:
            raise DeliveryFailed(
                "MINYI_WECHAT_APP_SECRET is not set, so WeChat APIs cannot be used"
            )
        try:
            async with self.shared.lock(self.key, LOCK_SECONDS):
                cached = await self.shared.get(self.key)
                if cached and cached != stale:
                    return cached  # another caller refreshed it while we waited for the lock
                token, ttl = await self._fetch(force=False)
                if token == stale:
                    # Normal mode returns the same token while WeChat holds it valid; it was
                    # just refused, so ask for a new one (WeChat allows this 20 times a day).
                    token, ttl = await self._fetch(force=True)
                await self.shared.set(self.key, token, ttl)
                log.info("wechat access token refreshed (valid %.0f s)", ttl)
                return token
        except DeliveryFailed:
            raise
        except Exception as exc:  # the lock timed out, or the cache is down
            raise DeliveryFailed(
                f"access token unavailable ({type(exc).__name__})", retry_after=5
            ) from exc

    async def _fetch(self, *, force: bool) -> tuple[str, float]:
        payload = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self.app_secret,
            "force_refresh": force,
        }
        try:
            async with self.http.post(
                self.url, data=json.dumps(payload), timeout=self.timeout, headers=_JSON
            ) as response:
                if response.status != 200:
                    raise DeliveryFailed(f"stable_token: HTTP {response.status}", retry_after=5)
                answer: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryFailed(f"stable_token: {type(exc).__name__}", retry_after=5) from exc
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            code = int(answer.get("errcode") or 0)
            hint = _FETCH_HINTS.get(code, "")
            raise DeliveryFailed(
                f"stable_token refused: {code} {answer.get('errmsg', '')}"
                + (f" ({hint})" if hint else ""),
                retry_after=_RETRY_AFTER.get(code),
            )
        expires_in = float(answer.get("expires_in") or 7200)
        # Keep it a little shorter than WeChat does: a token about to expire is refetched early.
        return token, max(expires_in - 300, min(expires_in, 60.0))


_JSON = {"Content-Type": "application/json"}
