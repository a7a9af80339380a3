"""The WeChat HTTP API over the app's shared aiohttp session (wechatpy's client is synchronous)."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from ..access_token import AccessTokens
from ..base import DeliveryFailed, MediaGone, RecipientUnreachable
from .token import TOKEN_ERRORS

log = logging.getLogger(__name__)

# Errors after which this route cannot reach the person now; the notifier falls back to a
# template message or SMS instead of retrying.
UNREACHABLE = {
    45015: "outside the 48-hour window after the citizen's last message",
    45047: "customer-service message quota for this citizen used up",
    43004: "the citizen does not follow the account",
    43101: "the citizen refused these messages",
    40003: "not an openid of this account",
}
# media/get: the MediaId is unknown or past its 3 days.
MEDIA_GONE = frozenset({40007, 46001})
# Errors worth retrying later, and when.
RETRY_AFTER = {-1: 5.0, 45009: 3600.0, 45011: 60.0}


class WeChatApi:
    def __init__(
        self, http: aiohttp.ClientSession, tokens: AccessTokens, *, api_base: str, timeout: float
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.base = f"{api_base.rstrip('/')}/cgi-bin/"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `cgi-bin/<path>` and return WeChat's answer, refreshing a refused token once."""
        token = await self.tokens.current()
        answer = await self._post(path, token, payload)
        code = errcode(answer)
        if code in TOKEN_ERRORS:
            log.info("wechat %s: access token refused (%d); refreshing once", path, code)
            token = await self.tokens.refresh(stale=token)
            answer = await self._post(path, token, payload)
        return answer

    async def send_text(self, openid: str, content: str) -> None:
        """One customer-service text message."""
        answer = await self.call(
            "message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": content}},
        )
        raise_for(answer, "message/custom/send")

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], client_msg_id: str
    ) -> str:
        """One template message; WeChat's msgid comes back later in TEMPLATESENDJOBFINISH."""
        answer = await self.call(
            "message/template/send",
            {
                "touser": openid,
                "template_id": template_id,
                "client_msg_id": client_msg_id,
                "data": data,
            },
        )
        raise_for(answer, "message/template/send")
        return str(answer.get("msgid", ""))

    async def download(self, media_id: str, limit: int) -> bytes:
        """A temporary medium a citizen sent (`media/get`), refreshing a refused token once."""
        token = await self.tokens.current()
        found = await self._get_media(token, media_id, limit)
        if isinstance(found, dict) and errcode(found) in TOKEN_ERRORS:
            token = await self.tokens.refresh(stale=token)
            found = await self._get_media(token, media_id, limit)
        if isinstance(found, bytes):
            return found
        if errcode(found) in MEDIA_GONE:
            raise MediaGone(f"media/get: wechat {errcode(found)} {found.get('errmsg', '')}")
        raise_for(found, "media/get")
        raise DeliveryFailed("media/get: neither a file nor an error", retry_after=60)

    async def _get_media(self, token: str, media_id: str, limit: int) -> bytes | dict[str, Any]:
        """The file, or WeChat's JSON error (sent as text/plain or application/json)."""
        try:
            async with self.http.get(
                self.base + "media/get",
                params={"access_token": token, "media_id": media_id},
                timeout=self.timeout,
            ) as response:
                if response.status != 200:
                    raise DeliveryFailed(f"media/get: HTTP {response.status}", retry_after=60)
                if response.content_length is not None and response.content_length > limit:
                    raise MediaGone(f"media/get: {response.content_length} bytes, over {limit}")
                body = await response.content.read(limit + 1)
                while len(body) <= limit:
                    more = await response.content.read(limit + 1 - len(body))
                    if not more:
                        break
                    body += more
                if len(body) > limit:
                    raise MediaGone(f"media/get: over {limit} bytes")
                if response.content_type in ("application/json", "text/plain"):
                    answer = json.loads(body)
                    if not isinstance(answer, dict):
                        raise ValueError("not a JSON object")
                    return answer
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryFailed(f"media/get: {type(exc).__name__}", retry_after=60) from None

    async def _post(self, path: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Chinese as UTF-8, not \u escapes: some WeChat endpoints show escapes literally.
        body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            async with self.http.post(
                self.base + path,
                params={"access_token": token},
                data=body,
                headers=_JSON,
                timeout=self.timeout,
            ) as response:
                if response.status != 200:
                    raise DeliveryFailed(f"{path}: HTTP {response.status}", retry_after=5)
                answer = await response.json(content_type=None)
        # Only the exception's type: its text may carry the URL, and so the access token.
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryFailed(f"{path}: {type(exc).__name__}", retry_after=5) from None
        if not isinstance(answer, dict):
            raise DeliveryFailed(f"{path}: answer is not a JSON object", retry_after=5)
        return answer


def errcode(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


def raise_for(answer: dict[str, Any], what: str) -> None:
    """DeliveryFailed (or RecipientUnreachable) unless WeChat said ok."""
    code = errcode(answer)
    if code == 0:
        return
    reason = f"{what}: wechat {code} {answer.get('errmsg', '')}".strip()
    if code in UNREACHABLE:
        raise RecipientUnreachable(f"{reason} ({UNREACHABLE[code]})")
    raise DeliveryFailed(reason, retry_after=RETRY_AFTER.get(code))


_JSON = {"Content-Type": "application/json; charset=utf-8"}
