"""Tencent Cloud SMS (腾讯云短信): SendSms 2021-01-11 signed with TC3-HMAC-SHA256; reply and status
callbacks.

The callbacks carry no request signature (protocols.md §3.2; their `sign` field is the SMS 签名
text), so the channel's guard (secret path segment and/or address allow list) authenticates them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ..base import DeliveryFailed, DeliveryReport, RecipientUnreachable, json_response
from .common import (
    TRANSIENT_RETRY,
    PayloadError,
    SmsMessage,
    SmsReply,
    approved_template,
    call,
    dedupe_key,
    server_failure,
    to_e164,
)
from .config import TEMPLATE_SETTINGS, SmsConfig
from .payloads import json_array, json_value, objects, optional_string, required_string

SERVICE = "sms"
API_VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"
# Codes of https://cloud.tencent.com/document/api/382/59177 and /382/38780. Per-number limits
# name their window; the waits below are that window.
THROTTLED = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 86400.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 86400.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.DailyLimit": 3600.0,
    "RequestLimitExceeded": 1.0,
    "InternalError.Timeout": TRANSIENT_RETRY,
    "InternalError.OtherError": TRANSIENT_RETRY,
    "InternalError": TRANSIENT_RETRY,
}
# 免打扰名单 (the citizen unsubscribed, or the carrier's do-not-disturb list), a malformed
# number, or a region Tencent does not deliver to: retrying will not help.
UNREACHABLE = frozenset(
    {
        "FailedOperation.PhoneNumberInBlacklist",
        "InvalidParameterValue.IncorrectPhoneNumber",
        "UnsupportedOperation.UnsupportedRegion",
    }
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The Authorization header of a POST to Tencent Cloud API 3.0 (signature v3, TC3-HMAC-SHA256)."""
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type.lower()}\nhost:{host.lower()}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    # The credential date is the UTC date of the timestamp, never the local one.
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signing_key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


class TencentSms:
    name = "tencent"
    max_body = 256 * 1024
    answers_get = False
    signs_webhooks = False

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.url = config.base_url + "/"
        self.host = urlsplit(config.base_url).netloc

    def has_template(self, template: str) -> bool:
        return template in self.config.templates

    async def send(self, http: aiohttp.ClientSession, message: SmsMessage) -> str:
        spec, values = approved_template(self.name, self.config.templates, message)
        if len(values) > 1 and not spec.params:
            raise DeliveryFailed(
                f"tencent: template {message.template!r} has several parameters; give their "
                f"order in {TEMPLATE_SETTINGS.get(message.template, 'its setting')} (ID:first,second)"
            )
        payload = json.dumps(
            {
                "PhoneNumberSet": [message.to],
                "SmsSdkAppId": self.config.app_id,
                "SignName": self.config.sign_name,
                "TemplateId": spec.code,
                "TemplateParamSet": [value for _, value in values],
                "SessionContext": message.idempotency_key,
            },
            ensure_ascii=False,
        ).encode()
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                self.config.access_key_id,
                self.config.access_key_secret,
                host=self.host,
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.config.region_name,
        }
        answer = await call(http, self.name, self.url, data=payload, headers=headers)
        data = answer.json()
        response = data.get("Response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            if answer.status >= 500 or answer.status == 429:
                raise server_failure(self.name, answer)
            raise DeliveryFailed(f"tencent: unreadable answer (HTTP {answer.status})")
        error = response.get("Error")
        if isinstance(error, dict):
            raise _failure(str(error.get("Code", "")), str(error.get("Message", "")))
        statuses = response.get("SendStatusSet")
        status = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(status, dict):
            raise DeliveryFailed("tencent: SendSms answered without a SendStatusSet")
        code = str(status.get("Code", ""))
        serial = status.get("SerialNo")
        if code == "Ok" and isinstance(serial, str) and serial:
            return serial
        raise _failure(code, str(status.get("Message", "")))

    def verify(self, request: web.Request, body: bytes) -> str | None:
        return None  # Tencent does not sign its callbacks; the channel's guard stands in for it

    def replies(self, request: web.Request, body: bytes) -> list[SmsReply]:
        value = json_value(body)
        # Documented as one object per reply; an array of them is read the same way.
        items = [value] if isinstance(value, dict) else objects(value, "replies")
        replies = []
        for index, item in enumerate(items):
            mobile = required_string(item, "mobile", index)
            country = optional_string(item, "nationcode", index) or "86"
            text = required_string(item, "text", index, empty=True)
            sent = item.get("time")
            if not isinstance(sent, int) or isinstance(sent, bool) or sent <= 0:
                raise PayloadError(f"item {index}: time must be Unix seconds")
            phone = to_e164(mobile, country)
            if phone is None:
                raise PayloadError(f"item {index}: mobile and nationcode are not a phone number")
            replies.append(
                SmsReply(
                    provider=self.name,
                    phone=phone,
                    text=text,
                    received_at=datetime.fromtimestamp(sent, UTC),
                    dedupe_key=dedupe_key(
                        self.name,
                        country,
                        mobile,
                        sent,
                        text,
                        item.get("extend"),
                        item.get("sign"),
                    ),
                )
            )
        return replies

    def reports(self, request: web.Request, body: bytes) -> list[DeliveryReport]:
        reports = []
        for index, item in enumerate(json_array(body, "delivery reports")):
            status = required_string(item, "report_status", index)
            if status not in ("SUCCESS", "FAIL"):
                raise PayloadError(f"item {index}: report_status must be SUCCESS or FAIL")
            reports.append(
                DeliveryReport(
                    channel="sms",
                    message_id=required_string(item, "sid", index),
                    delivered=status == "SUCCESS",
                    status=optional_string(item, "errmsg", index) or status,
                    detail=optional_string(item, "description", index),
                )
            )
        return reports

    def acknowledge(self) -> web.Response:
        return json_response({"result": 0, "errmsg": "OK"})


def _failure(code: str, message: str) -> DeliveryFailed:
    reason = f"tencent: {code or 'unknown error'}" + (f" ({message})" if message else "")
    if code in UNREACHABLE:
        return RecipientUnreachable(reason)
    wait = THROTTLED.get(code)
    if wait is None and code.startswith("RequestLimitExceeded"):
        wait = THROTTLED["RequestLimitExceeded"]
    return DeliveryFailed(reason, retry_after=wait)
