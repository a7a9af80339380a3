"""How the official account fetches its access token (shared by every process through
channels/access_token.py). `cgi-bin/stable_token` in normal mode hands every caller the same
token while it is valid; `force_refresh` asks for a new one after WeChat refused it (40001).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from ..access_token import keep_for
from ..base import DeliveryFailed

log = logging.getLogger(__name__)

# WeChat's "this access token is invalid / expired": refresh once, then try the call once more.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# What an operator must fix when WeChat refuses to give a token at all.
_FETCH_HINTS = {
    40001: "check MINYI_WECHAT_APP_SECRET",
    40013: "check MINYI_WECHAT_APP_ID",
    40125: "check MINYI_WECHAT_APP_SECRET",
    40164: "add this server's IP address to the account's IP whitelist",
}
_RETRY_AFTER = {-1: 5.0, 45009: 3600.0, 45011: 60.0}


class StableTokens:
    """How the official account fetches its token (`cgi-bin/stable_token`)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_base: str,
        app_id: str,
        app_secret: str | None,
        timeout: float,
    ) -> None:
        self.http = http
        self.url = f"{api_base.rstrip('/')}/cgi-bin/stable_token"
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def __call__(self, force: bool) -> tuple[str, float]:
        if not self.app_secret:
            raise DeliveryFailed(
                "MINYI_WECHAT_APP_SECRET is not set, so WeChat APIs cannot be used"
            )
        return await self._fetch(force=force)

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
        return token, keep_for(float(answer.get("expires_in") or 7200))


_JSON = {"Content-Type": "application/json"}
