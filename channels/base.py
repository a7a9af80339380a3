"""What every channel shares: the handler it is given, how it reaches people, how the composition
root builds it (`Plugin`), and careful body reading."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp
from aiohttp import web

from conversation.messages import Inbound, Reply

from .client import Clients
from .settings import Spec

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

    async def count(self, key: str, ttl: float) -> int:
        """Add one to a counter that lives `ttl` from its first count; the new value (pacing
        a provider's limits across processes)."""
        ...

    def lock(self, key: str, seconds: float) -> AbstractAsyncContextManager[None]:
        """Held by one process at a time; waited for, and held, at most `seconds`."""
        ...


class PendingReplies(Protocol):
    """Deliveries answered before their replies went out, kept where every process sees them
    (storage/pending.py), so that one whose process died is recovered by another.

    `put` before answering, `done` once the replies were pushed (or finally failed); `beat`
    keeps this process's entries its own for a short while; `take_orphans` moves to this
    process the entries of processes that stopped beating (each to one taker), `leave` gives
    this process's remaining entries up at once (a close that had to cancel work).
    """

    async def put(self, claim: str, inbound: Inbound) -> None: ...

    async def done(self, claim: str) -> None: ...

    async def beat(self) -> None: ...

    async def leave(self) -> None: ...

    async def take_orphans(self) -> list[tuple[str, Inbound]]: ...


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
    # When the provider says this status happened, where it says so (orders late reports).
    at: datetime | None = None


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

    async def wait(self, recipient: str, seconds: float) -> list[Reply]:
        """What is kept now, or the first messages to arrive within `seconds`."""
        ...


class MediaGone(Exception):
    """The provider no longer has the file (a WeChat MediaId past its 3 days, a Telegram
    file_id it refuses): asking again will not help."""


@runtime_checkable
class MediaSource(Protocol):
    """A channel that can fetch what a citizen sent there (a photo) by the ref its `Media` has."""

    name: str

    async def fetch_media(self, ref: str, limit: int) -> bytes:
        """The file's bytes (at most `limit`); MediaGone, or DeliveryFailed to try later."""
        ...


class PhotoKeeper(Protocol):
    """Cleans an uploaded photo and keeps it (storage/photos.py): the key the case refers to,
    or `conversation.messages.UnusablePhoto` with a sentence for the citizen."""

    async def keep(self, data: bytes, conversation: str = "") -> str:
        """`conversation` (channel:sender) holds the photo until a case does: an upload that
        no case took is swept once that conversation has ended."""
        ...


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
    # The real client behind trusted reverse proxies (MINYI_TRUSTED_PROXIES).
    clients: Clients = field(default_factory=Clients)
    # Where citizens' photos are cleaned and kept (the web chat's uploads).
    photos: PhotoKeeper | None = None
    # A channel's journal of deliveries answered before their replies went out, by channel
    # name; None when no other process could recover them (the embedded database).
    pending: Callable[[str], PendingReplies] | None = None


class Throttled(Exception):
    """The sender sent more than the rate limit allows (MINYI_RATE_SENDER): answer with the
    sentence, as a 429 where the channel has status codes, else as the reply."""

    def __init__(self, retry_after: int, text: str, english: str) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after, self.text, self.english = retry_after, text, english

    @property
    def message(self) -> str:
        return f"{self.text} {self.english}"


class DeliveryFailed(Exception):
    """Sending failed. `retry_after` (seconds) when the provider said when to try again."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RecipientUnreachable(DeliveryFailed):
    """This route cannot reach the person now (WeChat 45015/45047, a blocked Telegram bot, an
    SMS opt-out): retrying will not help; the notifier falls back to the next route.

    `lasting` when it stays so until the person acts (they blocked the bot): the notifier then
    marks their identity and stops trying this channel first.
    """

    def __init__(self, reason: str, *, lasting: bool = False) -> None:
        super().__init__(reason)
        self.lasting = lasting


@dataclass(frozen=True)
class Recipient:
    """Whom a message is for, as much as channels need: the chat their conversation is in
    (`channel`, `address` = their id there) and the mobile on file."""

    channel: str
    address: str
    phone: str = ""
    chat_reachable: bool = True  # not unsubscribed, not blocked
    sms_allowed: bool = True  # the number has not opted out


@dataclass(frozen=True)
class Notice:
    """One message to deliver outside a turn: the replies, an idempotency key, and the same
    notice as fields (`code`, `status`, `time`, `note`) for channels that send structured
    notifications (WeChat template messages)."""

    replies: Sequence[Reply]
    key: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One way to reach a recipient. `name` is what the timeline records; `channel` is whose
    delivery reports answer for it; a `conversational` route lands in the chat, where the
    citizen can answer (a template message or an SMS does not)."""

    name: str
    channel: str
    conversational: bool
    deliver: Callable[[Notice], Awaitable[str | None]]


class Channel(Protocol):
    """A citizen channel: owns its routes, says how it reaches people, closes cleanly."""

    name: str
    title: str  # as staff read it: 微信, 短信, 网页

    def routes(self) -> Sequence[web.RouteDef]: ...

    async def start(self, services: Services) -> None: ...

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        """The routes this channel has to the recipient, best first: a chat channel reaches the
        people whose conversation is on it; a phone channel (SMS) reaches any mobile number."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class PhoneTexting(Protocol):
    """A channel that texts any mobile number with the office's approved templates (SMS):
    surveys and answers to the citizen's own texts go this way only. `sign_name` is the 【签名】
    the provider puts in front (it counts towards the length of one SMS)."""

    sign_name: str

    def has_template(self, template: str) -> bool: ...

    async def text_phone(
        self, to: str, template: str, params: Mapping[str, str], text: str, key: str
    ) -> str: ...


@dataclass(frozen=True)
class Parts:
    """What a channel may be given when it is built: where what arrives on it goes.

    `handle` takes a citizen's message (the conversation pipeline); `sms_replies` takes the
    texts of one push answering something we sent (survey replies), keeping them to work
    through after the push is acknowledged; `staff_actions` takes what a staff member did
    in a staff front end, with a way to answer them there; `staff_roster` names who gets alerts
    on a front end; `text` is the office's sentence for a catalog key (channels hold no
    sentences of their own).
    """

    handle: Handler
    text: Callable[[str], str]
    sms_replies: Callable[[Any], Awaitable[None]]
    staff_actions: Callable[..., Awaitable[None]]
    # The staff on duty on a front end, by their id there (whom its alerts go to).
    staff_roster: Callable[[str], Callable[[], Awaitable[list[str]]]]
    # A keyed hash (storage/crypto.py `digest`) for ids that are credentials, such as the web
    # chat's session cookie: only the hash is stored, logged or used as a key.
    pseudonym: Callable[[str, str], str]


@dataclass(frozen=True)
class Built:
    """What a plugin built from its settings: a citizen channel, a staff alert target, or both."""

    channel: Channel | None = None
    staff: Any = None  # a channels.staff.StaffTarget


@dataclass(frozen=True)
class Plugin:
    """One line of the registry (channels/registry.py): a provider's settings, how they are
    checked together (`configure` returns None when the provider is off, raises SettingError
    naming the variable when a value cannot work) and how the channel is built."""

    name: str
    settings: tuple[Spec, ...]
    configure: Callable[[Mapping[str, Any]], Any]
    build: Callable[[Any, Parts], Built]


def json_error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message}, status=status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes even when no Content-Length was sent."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await read_whole(request, limit)
    if body is None:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=limit + 1)
    return body


async def read_whole(request: web.Request, limit: int) -> bytes | None:
    """Every byte of the body, or None past `limit`.

    `content.read(n)` returns what has arrived so far, not n bytes: a body split over TCP
    segments (as real networks do) would be cut short, so read until the end or the limit."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: thousands of nested brackets, which no real payload has.
        return None
    return value if isinstance(value, dict) else None


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Chinese kept readable (no \\u escapes)."""
    return web.json_response(data, status=status, dumps=_dumps, headers=headers)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
