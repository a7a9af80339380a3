"""Local stand-ins for the SMS providers' APIs: they check each request's authentication the way
the provider does (written here from the providers' documents, not with Minyi's own signing
code), record what was really sent, and answer as the provider would.

A test queues a provider error with `fake.fail_next(status, body, headers)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

ALIYUN_KEY_ID, ALIYUN_SECRET = "LTAI5tTestKeyId", "aliyun-test-secret"
TENCENT_ID, TENCENT_KEY = "AKIDtestSecretId0000000000000000", "tencent-test-secret-key"
TWILIO_SID, TWILIO_TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-test-auth-token"
HTTP_SECRET = "http-gateway-secret-0123456789"


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
        return fake.scripted() or web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": f"9327023040804{len(fake.requests):05d}^0"}
        )

    app = web.Application()
    app.router.add_post("/", send)
    return app


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
