"""What every channel shares: the handler it is given, and careful body reading."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from conversation.messages import Inbound, Reply

Handler = Callable[[Inbound], Awaitable[list[Reply]]]


class SharedCache(Protocol):
    """Small values and locks shared by every process (Redis, or the database when embedded).

    Channels keep provider state here that must not diverge between processes, such as the
    WeChat access token (each process fetching its own would invalidate the others').
    """

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Set only if absent (a first-seen check); True when this call set it."""
        ...

    def lock(self, key: str, seconds: float) -> AbstractAsyncContextManager[None]:
        """Held by one process at a time; waited for, and held, at most `seconds`."""
        ...


@dataclass(frozen=True)
class DeliveryReport:
    """A provider telling us what became of a message we sent (WeChat template job, SMS report).

    `message_id` is the provider's id for the sent message (WeChat MsgID, Alibaba BizId/OutId,
    Tencent sid, Twilio MessageSid, the `http` gateway's id): whatever `send` returned.
    """

    channel: str
    message_id: str
    delivered: bool
    status: str
    detail: str = ""


def _ignore_rejection(channel: str, reason: str) -> None:
    return None


def _ignore_observation(channel: str, what: str) -> None:
    return None


async def _ignore_report(report: DeliveryReport) -> None:
    return None


class Mailbox(Protocol):
    """Messages kept for someone who is not connected now (a closed web-chat page)."""

    async def put(self, recipient: str, replies: Sequence[Reply]) -> None: ...

    async def take(self, recipient: str, limit: int = 50) -> list[Reply]: ...


@dataclass
class Services:
    """What the composition root gives every channel at start-up."""

    http: aiohttp.ClientSession
    shared: SharedCache
    # A refused webhook (bad signature, wrong secret): counted in /metrics by the caller.
    rejected: Callable[[str, str], None] = _ignore_rejection
    # Where delivery reports go (the notifier records them on the case timeline).
    delivery_report: Callable[[DeliveryReport], Awaitable[None]] = _ignore_report
    # A push that needs no reply (a WeChat VIEW or LOCATION report): counted in /metrics.
    observed: Callable[[str, str], None] = _ignore_observation
    mailbox: Mailbox | None = None


class DeliveryFailed(Exception):
    """Sending failed. `retry_after` (seconds) when the provider said when to try again."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RecipientUnreachable(DeliveryFailed):
    """This route cannot reach the person now (WeChat 45015/45047, a blocked Telegram bot, an
    SMS opt-out): retrying will not help; the notifier falls back to the next route."""


class Channel(Protocol):
    """A citizen channel: owns its routes, sends replies outside a request, closes cleanly."""

    name: str

    def routes(self) -> Sequence[web.RouteDef]: ...

    async def start(self, services: Services) -> None: ...

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        """Deliver outside a request; the provider's message id when it gives one."""
        ...

    async def close(self) -> None: ...


def json_error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message}, status=status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes even when no Content-Length was sent."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Chinese kept readable (no \\u escapes)."""
    return web.json_response(data, status=status, dumps=_dumps, headers=headers)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
