"""Where staff hear that a person is needed: a Telegram duty group, a WeCom group robot, a webhook.

Each target sends a batch of alerts the way its platform likes best: one Telegram message per
alert, one WeCom markdown message for the whole batch (the robot allows only 20 a minute), and
one signed JSON POST per batch to a webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import aiohttp

from .base import DeliveryFailed, SharedCache

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
WECOM_PER_MINUTE = 20
WECOM_MAX_BYTES = 4096


@dataclass(frozen=True)
class StaffAlert:
    """Why a person is needed, with nothing personal beyond a masked phone."""

    key: str  # unique per alert; receivers deduplicate on it
    reason: str  # handoff, risk, unhappy, deadline.warning, deadline.missed, notification.failed
    title: str  # one line for humans, e.g. "群众要求人工服务"
    code: str = ""  # case code, when there is a case
    category: str = ""
    summary: str = ""  # short, phone masked
    channel: str = ""  # where the citizen wrote
    detail: str = ""  # e.g. the deadline and when it was due

    def lines(self) -> list[str]:
        rows = [f"【{self.title}】"]
        if self.code:
            rows.append(f"事项：{self.code}" + (f"（{self.category}）" if self.category else ""))
        if self.summary:
            rows.append(f"摘要：{self.summary}")
        if self.detail:
            rows.append(self.detail)
        if self.channel:
            rows.append(f"渠道：{self.channel}")
        return rows


class StaffTarget(Protocol):
    name: str

    async def send(self, alerts: Sequence[StaffAlert]) -> None: ...


async def _post(
    http: aiohttp.ClientSession, url: str, *, data: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    try:
        async with http.post(url, data=data, headers=headers, timeout=TIMEOUT) as response:
            text = await response.text()
            if response.status == 429:
                retry = response.headers.get("Retry-After")
                raise DeliveryFailed(
                    f"HTTP 429 from {url.split('?')[0]}", retry_after=float(retry) if retry else 60
                )
            if response.status >= 400:
                raise DeliveryFailed(
                    f"HTTP {response.status} from {url.split('?')[0]}: {text[:200]}"
                )
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                body = {}
            return body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__} calling {url.split('?')[0]}") from exc


class TelegramGroup:
    """Alerts to the duty group through the Bot API (MINYI_STAFF_TELEGRAM_CHAT)."""

    name = "telegram"

    def __init__(
        self, http: aiohttp.ClientSession, api_base: str, token: str, chat_id: str
    ) -> None:
        self.http, self.url, self.chat_id = http, f"{api_base}/bot{token}/sendMessage", chat_id

    async def send(self, alerts: Sequence[StaffAlert]) -> None:
        for alert in alerts:
            body = json.dumps(
                {"chat_id": self.chat_id, "text": "\n".join(alert.lines())}, ensure_ascii=False
            )
            answer = await _post(
                self.http,
                self.url,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            if answer.get("ok") is False:
                retry = (answer.get("parameters") or {}).get("retry_after")
                raise DeliveryFailed(
                    f"Telegram: {answer.get('description', 'refused')}", retry_after=retry
                )


class WeComRobot:
    """A WeCom (企业微信) group robot: markdown, batched, at most 20 messages a minute across processes."""

    name = "wecom"

    def __init__(
        self, http: aiohttp.ClientSession, api_base: str, key: str, shared: SharedCache
    ) -> None:
        self.http, self.url, self.shared = (
            http,
            f"{api_base}/cgi-bin/webhook/send?key={key}",
            shared,
        )

    async def send(self, alerts: Sequence[StaffAlert]) -> None:
        for text in _markdown_pages(alerts):
            await self._take_slot()
            body = json.dumps(
                {"msgtype": "markdown", "markdown": {"content": text}}, ensure_ascii=False
            )
            answer = await _post(
                self.http,
                self.url,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            if answer.get("errcode", 0) != 0:
                raise DeliveryFailed(
                    f"WeCom robot: {answer.get('errcode')} {answer.get('errmsg', '')}"
                )

    async def _take_slot(self) -> None:
        """One of the minute's 20 slots, or DeliveryFailed with the wait until the next minute."""
        minute = int(time.time() // 60)
        for slot in range(WECOM_PER_MINUTE):
            if await self.shared.add(f"wecom:{minute}:{slot}", "1", ttl=120):
                return
        raise DeliveryFailed(
            "WeCom robot: 20 messages this minute already", retry_after=60 - time.time() % 60
        )


def _markdown_pages(alerts: Sequence[StaffAlert]) -> list[str]:
    """As few messages as fit in 4096 bytes each, alerts never split."""
    pages: list[str] = []
    current = ""
    for alert in alerts:
        lines = alert.lines()
        block = f"**{lines[0]}**\n" + "\n".join(f"> {line}" for line in lines[1:])
        candidate = f"{current}\n\n{block}" if current else block
        if current and len(candidate.encode()) > WECOM_MAX_BYTES:
            pages.append(current)
            candidate = block
        current = (
            candidate[: WECOM_MAX_BYTES // 3]
            if len(candidate.encode()) > WECOM_MAX_BYTES
            else candidate
        )
    if current:
        pages.append(current)
    return pages


class SignedWebhook:
    """A JSON POST to the office's own system, signed X-Minyi-Signature = hex HMAC-SHA256(body)."""

    name = "webhook"

    def __init__(self, http: aiohttp.ClientSession, url: str, secret: str) -> None:
        self.http, self.url, self.secret = http, url, secret.encode()

    async def send(self, alerts: Sequence[StaffAlert]) -> None:
        body = json.dumps({"alerts": [asdict(a) for a in alerts]}, ensure_ascii=False).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        await _post(
            self.http,
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "X-Minyi-Signature": signature},
        )
