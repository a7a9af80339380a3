"""Alibaba Cloud SMS (阿里云短信): SendSms signed as its RPC API requires; SmsUp and SmsReport pushes.

The pushes are JSON arrays with no request signature (protocols.md §3.1), so the channel's guard
(secret path segment and/or address allow list) is what authenticates them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
from .config import SmsConfig
from .payloads import json_array, optional_string, required_string

API_VERSION = "2017-05-25"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
# Codes of https://help.aliyun.com/document_detail/101346.html. Flow control names a window
# (minute, hour, day) but not when it reopens: the waits below are that window, not a promise.
THROTTLED = {
    "isv.BUSINESS_LIMIT_CONTROL": 3600.0,
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "isv.MONTH_LIMIT_CONTROL": 86400.0,
    "VALVE:M_MC": 60.0,
    "VALVE:H_MC": 3600.0,
    "VALVE:D_MC": 86400.0,
    "Throttling": 1.0,
    "Throttling.User": 1.0,
    "Throttling.Api": 1.0,
    "isp.SYSTEM_ERROR": TRANSIENT_RETRY,
    "ServiceUnavailable": TRANSIENT_RETRY,
    "InternalError": TRANSIENT_RETRY,
}
# A number Alibaba refuses outright. Opt-outs and carrier blacklists show in delivery reports.
UNREACHABLE = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})


# Characters RFC 3986 leaves unreserved; every other one is percent-encoded, byte by byte of
# its UTF-8. Runs of the others are found by one regex and encoded by `bytes.hex` in C:
# `urllib.parse.quote` builds a string per byte in Python, a fifth of an SMS's sending time.
_RESERVED = re.compile(r"[^A-Za-z0-9\-_.~]+")


def _encoded(run: re.Match[str]) -> str:
    return "%" + run.group().encode().hex("%").upper()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba's signature wants it: space is %20, '*' is %2A, '~' stays
    (what `urllib.parse.quote(value, safe="")` gives)."""
    return _RESERVED.sub(_encoded, value)


def _encode_again(encoded: str) -> str:
    """`percent_encode` of a string already encoded and joined by '&' and '=': only '%', '&'
    and '=' are left to encode ('%' first, or the others' '%' would be encoded twice)."""
    return encoded.replace("%", "%25").replace("&", "%26").replace("=", "%3D")


def _pairs(params: Mapping[str, str]) -> dict[str, str]:
    """Each parameter as `name=value`, both encoded, signature left out."""
    return {
        name: f"{percent_encode(name)}={percent_encode(value)}"
        for name, value in params.items()
        if name != "Signature"
    }


def _signature(pairs: Mapping[str, str], secret: str, method: str) -> str:
    canonical = "&".join(pairs[name] for name in sorted(pairs))
    string_to_sign = f"{method}&%2F&{_encode_again(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Signature v1.0 (HMAC-SHA1) of Alibaba Cloud RPC APIs over the sorted parameters."""
    return _signature(_pairs(params), secret, method)


def signed_body(params: Mapping[str, str], secret: str) -> str:
    """The form body of a POST: the parameters and their signature, each encoded once for both
    (the canonical string is the same pairs sorted)."""
    pairs = _pairs(params)
    signature = _signature(pairs, secret, "POST")
    return "&".join([*pairs.values(), f"Signature={percent_encode(signature)}"])


def phone_numbers(e164: str) -> str:
    """Mainland numbers go without +86; others as country code and number without '+'."""
    return e164[3:] if e164.startswith("+86") else e164[1:]


class AliyunSms:
    name = "aliyun"
    max_body = 256 * 1024
    answers_get = True
    signs_webhooks = False

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        self.url = config.base_url + "/"

    def has_template(self, template: str) -> bool:
        return template in self.config.templates

    async def send(self, http: aiohttp.ClientSession, message: SmsMessage) -> str:
        spec, values = approved_template(self.name, self.config.templates, message)
        params = {
            "AccessKeyId": self.config.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.idempotency_key,
            "PhoneNumbers": phone_numbers(message.to),
            "RegionId": self.config.region_name,
            "SignName": self.config.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": spec.code,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        if values:
            params["TemplateParam"] = json.dumps(
                dict(values), ensure_ascii=False, separators=(",", ":")
            )
        body = signed_body(params, self.config.access_key_secret)
        answer = await call(
            http,
            self.name,
            self.url,
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        data = answer.json()
        code = str(data.get("Code", "")) if isinstance(data, dict) else ""
        if code == "OK" and isinstance(data, dict):
            biz_id = data.get("BizId")
            if isinstance(biz_id, str) and biz_id:
                return biz_id
            raise DeliveryFailed("aliyun: SendSms answered OK without a BizId")
        reason = f"aliyun: {code or 'HTTP ' + str(answer.status)}"
        if isinstance(data, dict) and data.get("Message"):
            reason += f" ({data['Message']})"
        if code in UNREACHABLE:
            raise RecipientUnreachable(reason)
        if code in THROTTLED:
            raise DeliveryFailed(reason, retry_after=THROTTLED[code])
        if answer.status >= 500 or answer.status == 429:
            raise server_failure(self.name, answer)
        raise DeliveryFailed(reason)

    def verify(self, request: web.Request, body: bytes) -> str | None:
        return None  # Alibaba does not sign its pushes; the channel's guard stands in for it

    def replies(self, request: web.Request, body: bytes) -> list[SmsReply]:
        replies = []
        for index, item in enumerate(json_array(body, "replies (SmsUp)")):
            number = required_string(item, "phone_number", index)
            sent = required_string(item, "send_time", index)
            content = required_string(item, "content", index, empty=True)
            phone = to_e164(number)
            if phone is None:
                raise PayloadError(f"item {index}: phone_number is not a mobile number")
            replies.append(
                SmsReply(
                    provider=self.name,
                    phone=phone,
                    text=content,
                    received_at=_beijing_time(sent, index),
                    # Alibaba documents no idempotency; these fields together name one MO.
                    dedupe_key=dedupe_key(
                        self.name,
                        number,
                        sent,
                        content,
                        item.get("dest_code"),
                        item.get("sequence_id"),
                    ),
                )
            )
        return replies

    def reports(self, request: web.Request, body: bytes) -> list[DeliveryReport]:
        reports = []
        for index, item in enumerate(json_array(body, "delivery reports (SmsReport)")):
            success = _boolean(item.get("success"), index)
            reports.append(
                DeliveryReport(
                    channel="sms",
                    message_id=required_string(item, "biz_id", index),
                    delivered=success,
                    status=optional_string(item, "err_code", index)
                    or ("DELIVERED" if success else "FAILED"),
                    detail=optional_string(item, "err_msg", index),
                )
            )
        return reports

    def acknowledge(self) -> web.Response:
        # Alibaba checks only that `code` is a number; 0 means taken.
        return json_response({"code": 0, "msg": "成功"})


def _beijing_time(value: str, index: int) -> datetime:
    """`2017-09-01 00:00:00` (or `20170901000000` in older pushes), Beijing time."""
    try:
        if len(value) == 19 and value[10] == " ":
            return datetime.fromisoformat(value).replace(tzinfo=BEIJING)
        if len(value) == 14 and value.isdigit():
            return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        pass
    raise PayloadError(f"item {index}: send_time must look like 2017-09-01 00:00:00")


def _boolean(value: Any, index: int) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise PayloadError(f"item {index}: success must be true or false")
