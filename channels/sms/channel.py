"""The SMS channel: the configured provider's webhooks, authenticated before anything is read,
and sending, for surveys (`send_sms`) and plain notices (`send`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from conversation.messages import Reply

from ..base import (
    DeliveryReport,
    Notice,
    Recipient,
    RecipientUnreachable,
    Route,
    Services,
    json_error,
    read_body,
)
from ..client import Clients
from .aliyun import AliyunSms
from .common import (
    IDEMPOTENCY_KEY,
    PayloadError,
    RepliesHandler,
    SmsMessage,
    SmsProvider,
)
from .config import Network, SmsConfig
from .http import HttpSms
from .tencent import TencentSms
from .twilio import TwilioSms

log = logging.getLogger(__name__)

# Items of one push handled side by side (the database pool is the real limit).
PARALLEL = 8
Item = TypeVar("Item")

PROVIDERS: dict[str, Callable[[SmsConfig], SmsProvider]] = {
    "aliyun": AliyunSms,
    "tencent": TencentSms,
    "twilio": TwilioSms,
    "http": HttpSms,
}


@dataclass(frozen=True)
class WebhookGuard:
    """What stands in for a signature where the provider has none: a secret path segment
    (/sms/aliyun/inbound/<secret>) and/or the addresses pushes may come from."""

    path_secret: str | None = None
    allow: tuple[Network, ...] = ()

    @property
    def protects(self) -> bool:
        return bool(self.path_secret or self.allow)

    def address_allowed(self, remote: str | None) -> bool:
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    def path_matches(self, given: str) -> bool:
        if self.path_secret is None:
            return True
        return hmac.compare_digest(given.encode(), self.path_secret.encode())


class SmsChannel:
    """A citizen channel for SMS; `on_replies` receives each push's replies, all at once."""

    name = "sms"
    title = "短信"

    def __init__(
        self,
        provider: SmsProvider,
        on_replies: RepliesHandler,
        guard: WebhookGuard,
        sign_name: str = "",
    ) -> None:
        if not provider.signs_webhooks and not guard.protects:
            raise ValueError(
                f"the {provider.name} SMS webhooks carry no signature: "
                "give a secret path segment or an address allow list"
            )
        self.provider = provider
        self.on_replies = on_replies
        self.guard = guard
        self.sign_name = sign_name
        self._services: Services | None = None

    def has_template(self, template: str) -> bool:
        """Whether `send_sms` can send this logical template (always, for free-text providers)."""
        return self.provider.has_template(template)

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        """Anyone with a mobile on file who has not opted out. A conversation only for someone
        whose conversation is on SMS (the mobile that texted): there an SMS is what they answer."""
        if not recipient.phone or not recipient.sms_allowed:
            return []
        phone = recipient.phone

        async def text(notice: Notice) -> str | None:
            return await self.send(phone, notice.replies, _sms_key(notice.key))

        chat = recipient.channel == self.name
        return [Route("sms", self.name, conversational=chat, deliver=text)]

    async def text_phone(
        self, to: str, template: str, params: Mapping[str, str], text: str, key: str
    ) -> str:
        """One approved-template SMS (a survey, an answer to the citizen's own text)."""
        message = SmsMessage(
            to=to, template=template, params=params, text=text, idempotency_key=_sms_key(key)
        )
        return await self.send_sms(message)

    def routes(self) -> Sequence[web.RouteDef]:
        routes = []
        for kind, handler in (("inbound", self._inbound), ("status", self._status)):
            path = f"/sms/{self.provider.name}/{kind}"
            # Without the secret the route still exists, so a probe is counted as a rejection.
            paths = [path, path + "/{secret}"] if self.guard.path_secret else [path]
            for each in paths:
                routes.append(web.post(each, handler))
                if self.provider.answers_get:
                    routes.append(web.get(each, self._connectivity_check))
        return routes

    async def start(self, services: Services) -> None:
        self._services = services
        if hasattr(self.provider, "clients"):  # Twilio signs the URL it called
            self.provider.clients = services.clients

    async def close(self) -> None:
        self._services = None  # the HTTP session is the app's; nothing of ours to close

    async def send(
        self, recipient: str, replies: Sequence[Reply], idempotency_key: str = ""
    ) -> str | None:
        """Replies as one plain-text SMS (the provider's message id); template providers use the
        "notice" template. Pass `idempotency_key` when the same notice may be sent again.

        Keep notices short: 70 characters with the 【签名】 are one SMS, longer ones are billed
        per 67, and template variables have their own limits (Alibaba 35 characters by default).
        """
        text = "\n".join(reply.as_plain_text() for reply in replies).strip()
        if not text:
            return None
        try:
            message = SmsMessage(
                to=recipient,
                template="notice",
                params={"text": text},
                text=text,
                idempotency_key=idempotency_key or uuid.uuid4().hex,
            )
        except ValueError:
            raise RecipientUnreachable("sms: the recipient is not an E.164 phone number") from None
        return await self.send_sms(message)

    async def send_sms(self, message: SmsMessage) -> str:
        """Send one SMS through the provider; its message id (what delivery reports name).

        Raises DeliveryFailed: with `retry_after` when trying again later may work (throttling,
        provider or network trouble), without it when it will not until someone changes the
        configuration or the text; RecipientUnreachable when the number cannot be reached.
        """
        if self._services is None:
            raise RuntimeError("the SMS channel is not started")
        message_id = await self.provider.send(self._services.http, message)
        log.info(
            "SMS %s sent to %s via %s as %s",
            message.template,
            message.masked_to,
            self.provider.name,
            message_id,
        )
        return message_id

    # -- webhooks ---------------------------------------------------------------------------

    async def _connectivity_check(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        return refused if refused is not None else self.provider.acknowledge()

    async def _inbound(self, request: web.Request) -> web.StreamResponse:
        return await self._receive(request, "replies", self.provider.replies, self.on_replies)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return await self._receive(
            request, "delivery reports", self.provider.reports, self._hand_on_reports
        )

    async def _receive(
        self,
        request: web.Request,
        what: str,
        parse: Callable[[web.Request, bytes], Sequence[Item]],
        hand_on: Callable[[Sequence[Item]], Awaitable[None]],
    ) -> web.StreamResponse:
        """Guard, read, verify, parse, hand each item on; acknowledge only when all were taken."""
        refused = self._refusal(request)
        if refused is not None:
            return refused
        limit = self.provider.max_body
        try:
            body = await read_body(request, limit)
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "too_large", f"The request is larger than {limit} bytes.")
        reason = self.provider.verify(request, body)
        if reason is not None:
            self._reject(reason)
            missing = reason == "missing_signature"
            message = "The request carries no signature." if missing else "The signature is wrong."
            return json_error(403, "forbidden", message)
        try:
            items = parse(request, body)
        except PayloadError as exc:
            log.warning("refused a malformed %s push: %s", self.provider.name, exc)
            return json_error(400, "bad_request", str(exc))
        try:
            await hand_on(items)
        except Exception:
            # Not acknowledged: the provider sends the push again, and what was already taken
            # is recognised by its dedupe key or report id.
            log.exception("an SMS %s push could not be handled", self.provider.name)
            return json_error(503, "unavailable", "Not recorded; send it again later.")
        log.info("took %d SMS %s from %s", len(items), what, self.provider.name)
        return self.provider.acknowledge()

    async def _hand_on_reports(self, reports: Sequence[DeliveryReport]) -> None:
        """Each message's reports in order, different messages side by side."""
        if self._services is None:
            raise RuntimeError("the SMS channel is not started")
        record = self._services.delivery_report
        queues: dict[str, list[DeliveryReport]] = {}
        for report in reports:
            queues.setdefault(report.message_id, []).append(report)
        gate = asyncio.Semaphore(PARALLEL)

        async def in_order(queue: list[DeliveryReport]) -> None:
            async with gate:
                for report in queue:
                    await record(report)

        outcomes = await asyncio.gather(
            *(in_order(q) for q in queues.values()), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a push that fails the guard, before a byte of its body is read."""
        clients = self._services.clients if self._services is not None else Clients()
        if not self.guard.address_allowed(clients.address(request)):
            self._reject("address_not_allowed")
            return json_error(403, "forbidden", "This address may not call this webhook.")
        if not self.guard.path_matches(request.match_info.get("secret", "")):
            self._reject("wrong_path_secret")
            return json_error(404, "not_found", "Not found.")
        return None

    def _reject(self, reason: str) -> None:
        log.warning("refused an SMS %s webhook: %s", self.provider.name, reason)
        if self._services is not None:
            self._services.rejected("sms", reason)


def _sms_key(key: str) -> str:
    """Providers take idempotency keys of 1-64 plain characters; ours may be longer or richer."""
    return key if IDEMPOTENCY_KEY.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()


def build_sms_channel(config: SmsConfig, on_replies: RepliesHandler) -> SmsChannel:
    """The channel for the configured provider. Raises SmsConfigError naming the variable."""
    config.check()
    provider = PROVIDERS[config.provider](config)
    guard = WebhookGuard(path_secret=config.path_secret, allow=config.allow)
    return SmsChannel(provider, on_replies, guard, config.sign_name)
