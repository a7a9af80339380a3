"""The `http` provider, for gateways without a built-in adapter (CONTRACTS.md), with Minyi's
extensions: the outbound request is signed like the webhooks, delivery reports arrive at
/sms/http/status, and a gateway can say a number is unreachable (see docs/sms.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from ..base import DeliveryFailed, DeliveryReport, RecipientUnreachable, json_response
from .common import PayloadError, SmsMessage, SmsReply, call, server_failure, to_e164
from .config import SmsConfig
from .payloads import json_object, optional_string, required_string

SIGNATURE_HEADER = "X-Minyi-Signature"
TIMESTAMP_HEADER = "X-Minyi-Timestamp"
# How far a push's signed time may be from our clock: a recorded push cannot be replayed later.
WINDOW_SECONDS = 300
STATUSES = ("delivered", "failed")


def body_signature(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body: what X-Minyi-Signature carries on our requests."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a gateway's push carries: hex HMAC-SHA256 of `<timestamp>.` and the raw body, the
    timestamp (Unix seconds) sent as X-Minyi-Timestamp, so the time is signed with the body."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class HttpSms:
    name = "http"
    max_body = 64 * 1024
    answers_get = False
    signs_webhooks = True

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.url = config.base_url + "/send"
        # Chinese carriers want the 【签名】 in the text; gateways that add it leave the setting unset.
        self.prefix = f"【{config.sign_name}】" if config.sign_name else ""

    def has_template(self, template: str) -> bool:
        return True  # free text: every message is sent as its rendered `text`

    async def send(self, http: aiohttp.ClientSession, message: SmsMessage) -> str:
        body = json.dumps(
            {"to": message.to, "text": self.prefix + message.text, "id": message.idempotency_key},
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: body_signature(self.config.webhook_secret, body),
        }
        answer = await call(http, self.name, self.url, data=body, headers=headers)
        if 200 <= answer.status < 300:
            # The gateway's reports name the message by the id we gave it.
            return message.idempotency_key
        if answer.status == 429 or answer.status >= 500:
            raise server_failure(self.name, answer)
        data = answer.json()
        error = data.get("error") if isinstance(data, dict) else None
        detail = data.get("message", "") if isinstance(data, dict) else ""
        reason = f"http: gateway answered HTTP {answer.status}" + (
            f" ({error}: {detail})" if error else ""
        )
        if error == "unreachable":
            raise RecipientUnreachable(reason)
        raise DeliveryFailed(reason)

    def verify(self, request: web.Request, body: bytes) -> str | None:
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not given:
            return "missing_signature"
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        if not timestamp.isdigit() or len(timestamp) > 12:
            return "missing_timestamp"
        expected = push_signature(self.config.webhook_secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
            return "bad_signature"
        if abs(time.time() - int(timestamp)) > WINDOW_SECONDS:
            return "stale_timestamp"
        return None

    def replies(self, request: web.Request, body: bytes) -> list[SmsReply]:
        data = json_object(body, '{"from", "text", "id"}')
        phone = to_e164(required_string(data, "from"))
        if phone is None:
            raise PayloadError("from must be an E.164 phone number such as +8613800138000")
        return [
            SmsReply(
                provider=self.name,
                phone=phone,
                text=required_string(data, "text", empty=True),
                received_at=datetime.now(UTC),
                dedupe_key=f"{self.name}:{required_string(data, 'id')}",
            )
        ]

    def reports(self, request: web.Request, body: bytes) -> list[DeliveryReport]:
        data = json_object(body, '{"id", "status", "detail"}')
        status = required_string(data, "status")
        if status not in STATUSES:
            raise PayloadError('status must be "delivered" or "failed"')
        # The signed push time orders the reports of one message (verify checked it).
        sent = request.headers.get(TIMESTAMP_HEADER, "")
        at = datetime.fromtimestamp(int(sent), UTC) if sent.isdigit() else None
        return [
            DeliveryReport(
                channel="sms",
                message_id=required_string(data, "id"),
                delivered=status == "delivered",
                status=status,
                detail=optional_string(data, "detail"),
                at=at,
            )
        ]

    def acknowledge(self) -> web.Response:
        return json_response({"status": "ok"})
