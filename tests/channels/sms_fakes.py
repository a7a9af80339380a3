"""Local stand-ins for the SMS providers' APIs: they check each request's authentication the way
the provider does (written here from the providers' documents, not with Minyi's own signing
code), record what was really sent, and answer as the provider would.

A test queues a provider error with `fake.fail_next(status, body, headers)`. Alibaba's fake also
keeps Alibaba's rules on its own (an unknown sign or template, missing or non-text parameters, a
number that is no mobile, 50 notices a day to one number), each refusal with Alibaba's own code
and message (`ALIYUN_ERRORS`, from the SendSms error-code page).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

ALIYUN_KEY_ID, ALIYUN_SECRET = "LTAI5tTestKeyId", "aliyun-test-secret"
TENCENT_ID, TENCENT_KEY = "AKIDtestSecretId0000000000000000", "tencent-test-secret-key"
TWILIO_SID, TWILIO_TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-test-auth-token"
HTTP_SECRET = "http-gateway-secret-0123456789"
# The Alibaba account the tests configure: its approved sign and templates with their variables.
ALIYUN_SIGN = "民意热线"
ALIYUN_TEMPLATES = {"SMS_100001": ("text",), "SMS_100002": ("ref",), "SMS_100003": ("code",)}
ALIYUN_DAY_LIMIT = 50  # notices per sign, template and number a day
# Alibaba's codes (https://help.aliyun.com/document_detail/101346.html) with their messages.
ALIYUN_ERRORS: dict[str, str] = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量中存在未赋值变量",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.BUSINESS_LIMIT_CONTROL": f"触发号码天级流控Permits:{ALIYUN_DAY_LIMIT}",
    "isv.DAY_LIMIT_CONTROL": "触发日发送限额",
    "isv.MONTH_LIMIT_CONTROL": "触发月发送限额",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.OUT_OF_SERVICE": "业务停机",
    "isv.ACCOUNT_ABNORMAL": "账户异常",
    "isv.SMS_CONTENT_ILLEGAL": "短信内容包含禁止发送内容",
    "isv.BLACK_KEY_CONTROL_LIMIT": "模板变量中存在黑名单关键字",
    "isv.PARAM_LENGTH_LIMIT": "参数超过长度限制",
    "VALVE:M_MC": "重复过滤",
    "Throttling.User": "Request was denied due to user flow control.",
    "isp.SYSTEM_ERROR": "系统出现错误，请重新调用",
}


@dataclass
class Recorded:
    """One request as the fake provider received it, and whether its authentication held."""

    path: str
    headers: dict[str, str]
    body: bytes
    fields: dict[str, Any]
    authentic: bool


@dataclass
class FakeProvider:
    requests: list[Recorded] = field(default_factory=list)
    queued: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    sent_today: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def fail_next_aliyun(self, code: str) -> None:
        """Alibaba's answer for `code`, as Alibaba words it."""
        status = 500 if code.startswith("isp.") else 200
        self.fail_next(status, aliyun_error(code))

    def fail_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.queued.append((status, body, headers or {}))

    def scripted(self) -> web.Response | None:
        if not self.queued:
            return None
        status, body, headers = self.queued.pop(0)
        return web.json_response(body, status=status, headers=headers)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


# -- Alibaba: RPC signature v1, recomputed as the documentation's recipe describes ---------------


def _aliyun_encode(value: str) -> str:
    # The documented recipe: form-encode, then '+' → %20, '*' → %2A, %7E → '~'.
    return (
        urllib.parse.quote_plus(value, encoding="utf-8")
        .replace("+", "%20")
        .replace("*", "%2A")
        .replace("%7E", "~")
    )


def aliyun_app(fake: FakeProvider) -> web.Application:
    nonces: set[str] = set()

    async def send(request: web.Request) -> web.Response:
        body = await request.read()
        fields = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        given = fields.pop("Signature", "")
        query = "&".join(
            f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in sorted(fields.items())
        )
        to_sign = "POST&" + _aliyun_encode("/") + "&" + _aliyun_encode(query)
        expected = base64.b64encode(
            hmac.new(f"{ALIYUN_SECRET}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        nonce = fields.get("SignatureNonce", "")
        authentic = (
            given == expected
            and fields.get("AccessKeyId") == ALIYUN_KEY_ID
            and nonce not in nonces
            and fields.get("SignatureMethod") == "HMAC-SHA1"
        )
        nonces.add(nonce)
        fake.requests.append(Recorded(request.path, dict(request.headers), body, fields, authentic))
        if not authentic:
            return web.json_response(
                {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"},
                status=400,
            )
        scripted = fake.scripted()
        if scripted is not None:
            return scripted
        refused = _aliyun_refusal(fake, fields)
        if refused is not None:
            return web.json_response(aliyun_error(refused))
        return web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": f"9327023040804{len(fake.requests):05d}^0"}
        )

    app = web.Application()
    app.router.add_post("/", send)
    return app


def aliyun_error(code: str) -> dict[str, str]:
    return {"Code": code, "Message": ALIYUN_ERRORS[code], "RequestId": "F655A8D5-B967-440B-8683"}


def _aliyun_refusal(fake: FakeProvider, fields: dict[str, str]) -> str | None:
    """The code Alibaba refuses this SendSms with, or None when it would send it."""
    number = fields.get("PhoneNumbers", "")
    # Eleven digits from 1 are a mainland mobile (1[3-9]…); others are a country code and a
    # number (Hong Kong 852…), never 86 again.
    if not re.fullmatch(r"1[3-9]\d{9}|(?!86)[2-9]\d{7,14}", number):
        return "isv.MOBILE_NUMBER_ILLEGAL"
    if fields.get("SignName") != ALIYUN_SIGN:
        return "isv.SMS_SIGNATURE_ILLEGAL"
    template = fields.get("TemplateCode", "")
    if template not in ALIYUN_TEMPLATES:
        return "isv.SMS_TEMPLATE_ILLEGAL"
    try:
        params = json.loads(fields.get("TemplateParam") or "{}")
    except ValueError:
        return "isv.INVALID_JSON_PARAM"
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return "isv.INVALID_JSON_PARAM"
    if any(not params.get(name) for name in ALIYUN_TEMPLATES[template]):
        return "isv.TEMPLATE_MISSING_PARAMETERS"
    key = (ALIYUN_SIGN, template, number)
    if fake.sent_today[key] >= ALIYUN_DAY_LIMIT:
        return "isv.BUSINESS_LIMIT_CONTROL"
    fake.sent_today[key] += 1
    return None


# -- Tencent: TC3-HMAC-SHA256 over what actually arrived (headers and raw body) -----------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tencent_app(fake: FakeProvider) -> web.Application:
    async def send(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-TC-Timestamp", "0")
        day = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d")
        canonical = (
            f"POST\n/\n\ncontent-type:{request.headers.get('Content-Type', '')}\n"
            f"host:{request.headers.get('Host', '')}\n\ncontent-type;host\n{_sha256(body)}"
        )
        scope = f"{day}/sms/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n{_sha256(canonical.encode())}"
        key = _mac(_mac(_mac(("TC3" + TENCENT_KEY).encode(), day), "sms"), "tc3_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        expected = (
            f"TC3-HMAC-SHA256 Credential={TENCENT_ID}/{scope}, "
            f"SignedHeaders=content-type;host, Signature={signature}"
        )
        authentic = (
            request.headers.get("Authorization") == expected
            and request.headers.get("X-TC-Action") == "SendSms"
            and request.headers.get("X-TC-Version") == "2021-01-11"
        )
        fields = json.loads(body)
        fake.requests.append(Recorded(request.path, dict(request.headers), body, fields, authentic))
        if not authentic:
            return web.json_response(
                {
                    "Response": {
                        "Error": {
                            "Code": "AuthFailure.SignatureFailure",
                            "Message": "The provided credentials could not be validated.",
                        },
                        "RequestId": "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6",
                    }
                }
            )
        return fake.scripted() or web.json_response(
            {
                "Response": {
                    "SendStatusSet": [
                        {
                            "SerialNo": f"2106:40008139581794073538182{len(fake.requests):04d}",
                            "PhoneNumber": fields["PhoneNumberSet"][0],
                            "Fee": 1,
                            "SessionContext": fields.get("SessionContext", ""),
                            "Code": "Ok",
                            "Message": "send success",
                            "IsoCode": "CN",
                        }
                    ],
                    "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279",
                }
            }
        )

    app = web.Application()
    app.router.add_post("/", send)
    return app


def tencent_error(code: str, message: str = "") -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "r-1"}}


def tencent_status(code: str, message: str = "") -> dict[str, Any]:
    status = {"SerialNo": "", "PhoneNumber": "+8613800138000", "Code": code, "Message": message}
    return {"Response": {"SendStatusSet": [status], "RequestId": "r-2"}}


# -- Twilio: HTTP Basic auth with the account SID and auth token --------------------------------


def twilio_app(fake: FakeProvider) -> web.Application:
    async def create(request: web.Request) -> web.Response:
        body = await request.read()
        fields = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        credentials = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        authentic = (
            request.headers.get("Authorization") == f"Basic {credentials}"
            and request.match_info["sid"] == TWILIO_SID
        )
        fake.requests.append(Recorded(request.path, dict(request.headers), body, fields, authentic))
        if not authentic:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        return fake.scripted() or web.json_response(
            {"sid": f"SM{len(fake.requests):032x}", "status": "queued", "to": fields["To"]},
            status=201,
        )

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create)
    return app


# -- The http provider's gateway: X-Minyi-Signature on the request --------------------------------


def http_gateway_app(fake: FakeProvider) -> web.Application:
    async def send(request: web.Request) -> web.Response:
        body = await request.read()
        expected = hmac.new(HTTP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        authentic = request.headers.get("X-Minyi-Signature") == expected
        fields = json.loads(body)
        fake.requests.append(Recorded(request.path, dict(request.headers), body, fields, authentic))
        if not authentic:
            return web.json_response({"error": "forbidden"}, status=403)
        return fake.scripted() or web.json_response({"accepted": True}, status=202)

    app = web.Application()
    app.router.add_post("/send", send)
    return app


APPS = {
    "aliyun": aliyun_app,
    "tencent": tencent_app,
    "twilio": twilio_app,
    "http": http_gateway_app,
}


def http_push_headers(
    body: bytes, secret: str = HTTP_SECRET, at: float | None = None
) -> dict[str, str]:
    """The headers a gateway signs its push to /sms/http/* with: the time and the body."""
    import time as _time

    timestamp = str(int(_time.time() if at is None else at))
    signature = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Minyi-Timestamp": timestamp,
        "X-Minyi-Signature": signature,
    }
