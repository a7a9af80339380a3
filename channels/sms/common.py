"""What every SMS provider shares: the message sent, the reply received, phones, and HTTP calls."""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from ..base import DeliveryFailed, DeliveryReport
from .config import TEMPLATE_SETTINGS, TemplateSpec

# Every provider call is bounded; the shared session's own timeout is only the outer limit.
SEND_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
# When a provider fails without saying when to come back (5xx, network), try again after this.
TRANSIENT_RETRY = 30.0

E164 = re.compile(r"\+[1-9]\d{6,14}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsMessage:
    """One SMS to send.

    `template` is a logical name ("survey", "clarify", "notice"): providers that only send
    approved templates (aliyun, tencent) look up its code and fill it with `params`; providers
    that send free text (twilio, http) send `text`, the same message rendered in full.
    `idempotency_key` travels as Alibaba `OutId`, Tencent `SessionContext` and the http
    gateway's `id` (Twilio has no such field; see docs/sms.md).
    """

    to: str = field(repr=False)
    template: str
    text: str
    idempotency_key: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not E164.fullmatch(self.to):
            raise ValueError("SmsMessage.to must be an E.164 number such as +8613800138000")
        if not TEMPLATE_NAME.fullmatch(self.template):
            raise ValueError(f"SmsMessage.template {self.template!r} is not a template name")
        if not self.text.strip():
            raise ValueError("SmsMessage.text must not be empty")
        if not IDEMPOTENCY_KEY.fullmatch(self.idempotency_key):
            raise ValueError("SmsMessage.idempotency_key must be 1-64 of A-Z a-z 0-9 _ . : -")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.params.items()):
            raise ValueError("SmsMessage.params must map names to strings")

    @property
    def masked_to(self) -> str:
        return mask_phone(self.to)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsReply:
    """A citizen's SMS to us (上行/MO), as every provider delivers it.

    `dedupe_key` is the same each time the provider re-delivers this very message (Alibaba
    retries for hours), so whoever handles it can recognise a repeat. It is derived from the
    message, phone included: keep it like personal data (hash it again before storing).
    """

    provider: str
    phone: str = field(repr=False)
    text: str
    received_at: datetime
    dedupe_key: str

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


# Takes every reply of one push at once; returns once they are kept (the push is then
# acknowledged), raises when they were not (the provider pushes again).
RepliesHandler = Callable[[Sequence[SmsReply]], Awaitable[None]]


class PayloadError(ValueError):
    """A webhook body that is not what the provider documents; the message says what is wrong."""


class SmsProvider(Protocol):
    """One provider's API and webhook formats; the channel does the rest."""

    name: str
    # Largest webhook body accepted, in bytes.
    max_body: int
    # The provider checks the callback URL with a GET that must be acknowledged (Alibaba).
    answers_get: bool
    # The provider signs its webhooks (checked in `verify`); the others need the channel's guard.
    signs_webhooks: bool

    def has_template(self, template: str) -> bool: ...

    async def send(self, http: aiohttp.ClientSession, message: SmsMessage) -> str:
        """Send one SMS; the provider's message id. Raises DeliveryFailed or RecipientUnreachable."""
        ...

    def verify(self, request: web.Request, body: bytes) -> str | None:
        """Why the request is not from the provider (a short reason for metrics), or None."""
        ...

    def replies(self, request: web.Request, body: bytes) -> list[SmsReply]:
        """The replies in an inbound push. Raises PayloadError."""
        ...

    def reports(self, request: web.Request, body: bytes) -> list[DeliveryReport]:
        """The delivery reports in a status push. Raises PayloadError."""
        ...

    def acknowledge(self) -> web.Response:
        """The answer that tells the provider the push was taken (and not to send it again)."""
        ...


def mask_phone(phone: str) -> str:
    """+8613800138000 → +86138****8000: enough to recognise in a log, not to dial."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[: len(phone) - 8] + "****" + phone[-4:]


def to_e164(raw: str, country_code: str = "") -> str | None:
    """A provider's phone number as E.164, or None when it is not one.

    Chinese providers write mainland mobiles without a country code (13800138000) and give the
    code apart when they give it at all (Tencent `nationcode`).
    """
    digits = re.sub(r"[\s-]", "", raw)
    if country_code:
        digits = "+" + country_code.lstrip("+") + digits
    elif digits.startswith("00"):
        digits = "+" + digits[2:]
    elif re.fullmatch(r"1[3-9]\d{9}", digits):
        digits = "+86" + digits
    elif re.fullmatch(r"861[3-9]\d{9}", digits):
        digits = "+" + digits
    return digits if E164.fullmatch(digits) else None


def dedupe_key(provider: str, *parts: object) -> str:
    """A stable key from the fields that identify one message, for providers without an id."""
    joined = "\x1f".join("" if part is None else str(part) for part in parts)
    return f"{provider}:{hashlib.sha256(joined.encode()).hexdigest()}"


def approved_template(
    provider: str, templates: Mapping[str, TemplateSpec], message: SmsMessage
) -> tuple[TemplateSpec, list[tuple[str, str]]]:
    """The approved template for the message and its parameters, in the template's order.

    Raises DeliveryFailed (not to be retried) when no template is configured for it, or when
    the message does not carry exactly the parameters the template takes: a mismatch between
    code and configuration that only a person can mend.
    """
    spec = templates.get(message.template)
    if spec is None:
        setting = TEMPLATE_SETTINGS.get(message.template, "MINYI_SMS_TEMPLATE_…")
        raise DeliveryFailed(f"{provider}: no template for {message.template!r}; set {setting}")
    if not spec.params:
        return spec, list(message.params.items())
    if set(message.params) != set(spec.params):
        raise DeliveryFailed(
            f"{provider}: template {message.template!r} takes parameters "
            f"{', '.join(spec.params)}, the message has {', '.join(message.params) or 'none'}"
        )
    return spec, [(name, message.params[name]) for name in spec.params]


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer, read in full."""

    status: int
    body: bytes
    retry_after: float | None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def call(http: aiohttp.ClientSession, provider: str, url: str, **request: Any) -> Answer:
    """POST to a provider with a timeout; a network failure becomes a retryable DeliveryFailed.

    Whether a provider that timed out has sent the SMS cannot be known: the caller's
    idempotency key is what lets a retry be recognised where the provider supports one.
    """
    try:
        async with http.post(url, timeout=SEND_TIMEOUT, **request) as response:
            body = await response.read()
            return Answer(response.status, body, retry_after(response.headers.get("Retry-After")))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryFailed(
            f"{provider}: could not reach the SMS API ({type(exc).__name__})",
            retry_after=TRANSIENT_RETRY,
        ) from None


def retry_after(value: str | None) -> float | None:
    """The Retry-After header in seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def server_failure(provider: str, answer: Answer) -> DeliveryFailed:
    """A 5xx or 429 from a provider: try again later, when it says or after TRANSIENT_RETRY."""
    return DeliveryFailed(
        f"{provider}: the SMS API answered HTTP {answer.status}",
        retry_after=answer.retry_after or TRANSIENT_RETRY,
    )
