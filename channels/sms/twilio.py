"""Twilio: Messages API with Basic auth; inbound SMS and status callbacks verified by X-Twilio-Signature.

Twilio signs the full public URL it called plus the sorted form parameters (HMAC-SHA1 with the
auth token). Behind a proxy that URL is not the one this process sees, so it is rebuilt from
MINYI_PUBLIC_URL. Twilio's Messages API takes no idempotency key: `SmsMessage.idempotency_key`
is not sent, and a retry after a timeout may send a second SMS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from ..base import DeliveryFailed, DeliveryReport, RecipientUnreachable
from ..client import Clients
from .common import PayloadError, SmsMessage, SmsReply, call, server_failure, to_e164
from .config import SmsConfig
from .payloads import form

API_VERSION = "2010-04-01"
# Error codes of https://www.twilio.com/docs/api/errors: invalid 'To', unsubscribed (STOP),
# unroutable, not SMS-capable, landline.
UNREACHABLE = frozenset({21211, 21610, 21612, 21614, 21635})
RATE_LIMITED = 20429
# Statuses after which nothing more will be reported; the others (queued, sending, sent…) are
# steps on the way and are acknowledged without being passed on.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """base64(HMAC-SHA1(auth token, URL + each name and value, sorted by name then value))."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> tuple[str, str]:
    """The URL with and without its port: Twilio signs either form (its own SDK checks both)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets in a netloc
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = userinfo + "@" if userinfo else ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    without = urlunsplit(parts._replace(netloc=f"{prefix}{host}"))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}"))
    return without, with_port


class TwilioSms:
    name = "twilio"
    max_body = 64 * 1024
    answers_get = False
    signs_webhooks = True

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.url = f"{config.base_url}/{API_VERSION}/Accounts/{config.account_sid}/Messages.json"
        self.public_url = config.public_url.rstrip("/")
        self.clients = Clients()  # the app's, once started
        # HTTP Basic auth, written out: aiohttp's BasicAuth helper is deprecated from 3.14 on.
        credentials = f"{config.account_sid}:{config.auth_token}".encode()
        self.headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    def has_template(self, template: str) -> bool:
        return True  # free text: every message is sent as its rendered `text`

    async def send(self, http: aiohttp.ClientSession, message: SmsMessage) -> str:
        sender = "MessagingServiceSid" if self.config.sender.startswith("MG") else "From"
        fields = {
            "To": message.to,
            sender: self.config.sender,
            "Body": message.text,
            "StatusCallback": f"{self.public_url}/sms/twilio/status",
        }
        answer = await call(http, self.name, self.url, data=fields, headers=self.headers)
        data = answer.json()
        if 200 <= answer.status < 300 and isinstance(data, dict):
            sid = data.get("sid")
            if isinstance(sid, str) and sid:
                return sid
            raise DeliveryFailed("twilio: the Messages API answered without a sid")
        code = data.get("code") if isinstance(data, dict) else None
        detail = data.get("message", "") if isinstance(data, dict) else ""
        reason = f"twilio: error {code or answer.status}" + (f" ({detail})" if detail else "")
        if code in UNREACHABLE:
            raise RecipientUnreachable(reason)
        if code == RATE_LIMITED or answer.status == 429 or answer.status >= 500:
            raise server_failure(self.name, answer)
        raise DeliveryFailed(reason)

    def verify(self, request: web.Request, body: bytes) -> str | None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return "missing_signature"
        try:
            params = form(body)
        except PayloadError:
            return "bad_signature"  # what was signed cannot even be read back
        # The public URL Twilio was given; behind a trusted proxy, also the URL the proxy says
        # was called (X-Forwarded-Proto/-Host), for offices that serve several host names.
        called = {self.public_url + request.path_qs, self.clients.url(request)}
        for url in (variant for each in sorted(called) for variant in url_variants(each)):
            expected = twilio_signature(self.config.auth_token, url, params)
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return None
        return "bad_signature"

    def replies(self, request: web.Request, body: bytes) -> list[SmsReply]:
        fields = dict(form(body))
        sid = _field(fields, "MessageSid")
        phone = to_e164(_field(fields, "From"))
        if phone is None:
            raise PayloadError("From must be an E.164 phone number")
        return [
            SmsReply(
                provider=self.name,
                phone=phone,
                text=fields.get("Body", ""),
                received_at=datetime.now(UTC),  # Twilio's inbound request carries no time
                dedupe_key=f"{self.name}:{sid}",
            )
        ]

    def reports(self, request: web.Request, body: bytes) -> list[DeliveryReport]:
        fields = dict(form(body))
        sid = _field(fields, "MessageSid")
        status = _field(fields, "MessageStatus")
        if status not in FINAL_STATUSES:
            return []
        return [
            DeliveryReport(
                channel="sms",
                message_id=sid,
                delivered=status == "delivered",
                status=status,
                detail=f"error {fields['ErrorCode']}" if fields.get("ErrorCode") else "",
            )
        ]

    def acknowledge(self) -> web.Response:
        # An empty TwiML answer: take the message, reply nothing.
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def _field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise PayloadError(f"{name} is missing")
    return value
