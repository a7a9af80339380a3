"""The WeCom app's HTTP API over the app's shared aiohttp session: its access token, and
`message/send` paced within WeCom's per-member limits.

WeCom drops what exceeds 30 messages a minute or 1,000 an hour to one member *silently* — no
error comes back — so Minyi counts what it sends to each member across processes (the shared
cache) and holds the rest (`DeliveryFailed` with the wait) instead of losing it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp

from ..access_token import AccessTokens, keep_for
from ..base import DeliveryFailed, RecipientUnreachable, SharedCache

log = logging.getLogger(__name__)

PER_MINUTE = 30
PER_HOUR = 1000
# "The access token is invalid / expired": refresh once, then try the call once more.
TOKEN_ERRORS = frozenset({40014, 42001})
# What an operator must fix when WeCom refuses (the text says which setting or page).
HINTS = {
    40001: "check MINYI_WECOM_SECRET",
    40013: "check MINYI_WECOM_CORP_ID",
    40056: "check MINYI_WECOM_AGENT_ID",
    60020: "add this server's address to the app's 企业可信IP",
    81013: "the member is not in the app's visible range (可见范围)",
}
UNREACHABLE = frozenset({81013, 60111})  # not a member the app may reach
RETRY_AFTER = {-1: 5.0, 45009: 3600.0, 45033: 60.0}
TASK_EXISTS = 40058  # a template card's task_id sent already: this very card went out


class WeComApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        shared: SharedCache,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        timeout: float = 5.0,
    ) -> None:
        self.http = http
        self.shared = shared
        self.base = f"{api_base.rstrip('/')}/cgi-bin/"
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.tokens = AccessTokens(
            shared, f"wecom:access_token:{corp_id}:{agent_id}", self._fetch, name="wecom"
        )

    async def _fetch(self, force: bool) -> tuple[str, float]:
        params = {"corpid": self.corp_id, "corpsecret": self.secret}
        answer = await self._request("GET", "gettoken", params=params)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise _failure("gettoken", answer)
        return token, keep_for(float(answer.get("expires_in") or 7200))

    async def send(self, userid: str, message: dict[str, Any]) -> str:
        """One app message to one member (`message` holds msgtype and its part); WeCom's msgid.
        Raises DeliveryFailed with the wait when the member's quota is used up."""
        await self._take_quota(userid)
        payload = {"touser": userid, "agentid": self.agent_id, **message}
        token = await self.tokens.current()
        answer = await self._request(
            "POST", "message/send", params={"access_token": token}, json=payload
        )
        if _code(answer) in TOKEN_ERRORS:
            log.info("wecom message/send: access token refused; refreshing once")
            token = await self.tokens.refresh(stale=token)
            answer = await self._request(
                "POST", "message/send", params={"access_token": token}, json=payload
            )
        code = _code(answer)
        if code == TASK_EXISTS:
            return ""  # the same card (same task_id) went out before: nothing more to do
        if code != 0:
            raise _failure("message/send", answer)
        if answer.get("invaliduser"):
            raise RecipientUnreachable(f"wecom: {userid!r} is not a member the app can reach")
        return str(answer.get("msgid", ""))

    async def _take_quota(self, userid: str) -> None:
        now = time.time()
        minute, hour = int(now // 60), int(now // 3600)
        if await self.shared.count(f"wecom:sent:{userid}:m:{minute}", 120) > PER_MINUTE:
            raise DeliveryFailed(
                f"wecom: {PER_MINUTE} messages to {userid} this minute already",
                retry_after=60 - now % 60 + 1,
            )
        if await self.shared.count(f"wecom:sent:{userid}:h:{hour}", 7200) > PER_HOUR:
            raise DeliveryFailed(
                f"wecom: {PER_HOUR} messages to {userid} this hour already",
                retry_after=3600 - now % 3600 + 1,
            )

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.http.request(
                method, self.base + path, timeout=self.timeout, **kwargs
            ) as response:
                if response.status != 200:
                    raise DeliveryFailed(f"wecom {path}: HTTP {response.status}", retry_after=5)
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryFailed(f"wecom {path}: {type(exc).__name__}", retry_after=5) from exc
        return answer if isinstance(answer, dict) else {}


def _code(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


def _failure(path: str, answer: dict[str, Any]) -> DeliveryFailed:
    code = _code(answer)
    hint = HINTS.get(code, "")
    reason = f"wecom {path}: {code} {answer.get('errmsg', '')}" + (f" ({hint})" if hint else "")
    if code in UNREACHABLE:
        return RecipientUnreachable(reason)
    return DeliveryFailed(reason, retry_after=RETRY_AFTER.get(code))
