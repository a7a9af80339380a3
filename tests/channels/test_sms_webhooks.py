"""SMS replies and delivery reports through the whole app, in each provider's own format:
authenticated before anything is read, acknowledged as each provider wants, and only once the
handler has taken every item."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest

from channels.base import DeliveryReport

from .conftest import PATH_SECRET, PUBLIC_URL, MakeRig, Rig, payload
from .sms_fakes import HTTP_SECRET, TWILIO_TOKEN, http_push_headers

BEIJING = timezone(timedelta(hours=8))
ALIYUN_INBOUND = f"/sms/aliyun/inbound/{PATH_SECRET}"
ALIYUN_STATUS = f"/sms/aliyun/status/{PATH_SECRET}"
TENCENT_INBOUND = f"/sms/tencent/inbound/{PATH_SECRET}"
TENCENT_STATUS = f"/sms/tencent/status/{PATH_SECRET}"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# -- Alibaba ---------------------------------------------------------------------------------------


async def test_alibaba_reply_push_is_read_and_acknowledged(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    response = await rig.client.post(
        ALIYUN_INBOUND, data=payload("aliyun_smsup.json"), headers=JSON
    )
    assert response.status == 200
    assert await response.json() == {"code": 0, "msg": "成功"}
    first, second, third = rig.recorder.replies
    assert (first.provider, first.phone, first.text) == (
        "aliyun",
        "+8613800138000",
        "1 7K3M 处理得很及时，谢谢",
    )
    assert first.received_at == datetime(2026, 11, 22, 10, 15, 32, tzinfo=BEIJING)
    assert (second.phone, second.text) == ("+8613912345678", "TD")
    assert third.received_at == datetime(2026, 11, 22, 10, 15, 51, tzinfo=BEIJING)
    assert len({r.dedupe_key for r in rig.recorder.replies}) == 3
    assert all(r.dedupe_key.startswith("aliyun:") for r in rig.recorder.replies)
    assert "13800138000" not in repr(first)  # the phone stays out of reprs and so of logs


async def test_an_alibaba_redelivery_gives_the_same_dedupe_keys(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    for _ in range(2):
        response = await rig.client.post(ALIYUN_INBOUND, data=payload("aliyun_smsup.json"))
        assert response.status == 200
    keys = [r.dedupe_key for r in rig.recorder.replies]
    assert keys[:3] == keys[3:] and len(set(keys)) == 3


async def test_alibaba_connectivity_check_is_answered(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    for path in (ALIYUN_INBOUND, ALIYUN_STATUS):
        response = await rig.client.get(path)
        assert response.status == 200 and await response.json() == {"code": 0, "msg": "成功"}
    assert (await rig.client.get("/sms/aliyun/inbound/wrong-secret-000000")).status == 404


@pytest.mark.parametrize(
    "path",
    ["/sms/aliyun/inbound", "/sms/aliyun/inbound/not-the-secret-at-all", "/sms/aliyun/status/x"],
)
async def test_alibaba_push_without_the_secret_path_is_not_found(
    make_rig: MakeRig, path: str
) -> None:
    rig = await make_rig("aliyun")
    response = await rig.client.post(path, data=payload("aliyun_smsup.json"), headers=JSON)
    assert response.status == 404 and (await response.json())["error"] == "not_found"
    assert rig.recorder.replies == [] and rig.recorder.reports == []
    assert await rig.rejections("wrong_path_secret") == 1


async def test_alibaba_push_from_an_address_not_allowed_is_forbidden(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun", sms_webhook_allow="106.11.0.0/16, 2001:db8::/32")
    response = await rig.client.post(ALIYUN_INBOUND, data=payload("aliyun_smsup.json"))
    assert response.status == 403 and rig.recorder.replies == []
    assert await rig.rejections("address_not_allowed") == 1


async def test_an_allow_list_alone_protects_the_plain_path(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun", sms_webhook_secret=None, sms_webhook_allow="127.0.0.1")
    response = await rig.client.post("/sms/aliyun/inbound", data=payload("aliyun_smsup.json"))
    assert response.status == 200 and len(rig.recorder.replies) == 3


async def test_alibaba_delivery_reports(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    response = await rig.client.post(ALIYUN_STATUS, data=payload("aliyun_smsreport.json"))
    assert response.status == 200 and await response.json() == {"code": 0, "msg": "成功"}
    assert rig.recorder.reports == [
        DeliveryReport("sms", "932702304080415357^0", True, "DELIVERED", "用户接收成功"),
        DeliveryReport("sms", "932702304080415358^0", False, "MK:0001", "空号"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b'{"phone_number": "13800138000"}', "must be a JSON array"),
        (b"[1]", "item 0: must be a JSON object"),
        (b'[{"phone_number": "13800138000", "send_time": "2026-11-22 10:15:32"}]', "content"),
        (
            b'[{"phone_number": "12", "send_time": "2026-11-22 10:15:32", "content": "1"}]',
            "not a mobile number",
        ),
        (
            b'[{"phone_number": "13800138000", "send_time": "yesterday", "content": "1"}]',
            "send_time must look like",
        ),
    ],
)
async def test_a_malformed_alibaba_push_is_refused_with_the_reason(
    make_rig: MakeRig, body: bytes, message: str
) -> None:
    rig = await make_rig("aliyun")
    response = await rig.client.post(ALIYUN_INBOUND, data=body, headers=JSON)
    assert response.status == 400
    data = await response.json()
    assert data["error"] == "bad_request" and message in data["message"]
    assert rig.recorder.replies == []
    assert (await rig.client.get("/healthz")).status == 200  # and the server keeps serving


async def test_a_malformed_report_push_is_refused(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    body = json.dumps([{"biz_id": "1", "success": "maybe"}]).encode()
    response = await rig.client.post(ALIYUN_STATUS, data=body, headers=JSON)
    assert (
        response.status == 400
        and "success must be true or false" in (await response.json())["message"]
    )


async def test_handler_failure_is_not_acknowledged_so_the_provider_retries(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig("aliyun")
    rig.recorder.failing = True
    response = await rig.client.post(ALIYUN_INBOUND, data=payload("aliyun_smsup.json"))
    assert response.status == 503 and (await response.json())["error"] == "unavailable"
    response = await rig.client.post(ALIYUN_STATUS, data=payload("aliyun_smsreport.json"))
    assert response.status == 503
    rig.recorder.failing = False
    response = await rig.client.post(ALIYUN_INBOUND, data=payload("aliyun_smsup.json"))
    assert response.status == 200 and len(rig.recorder.replies) == 3


async def test_an_oversized_push_is_refused(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    body = json.dumps([{"content": "x" * 300_000}]).encode()
    response = await rig.client.post(ALIYUN_INBOUND, data=body, headers=JSON)
    assert response.status == 413 and rig.recorder.replies == []


# -- Tencent ---------------------------------------------------------------------------------------


async def test_tencent_reply_callback(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent")
    response = await rig.client.post(
        TENCENT_INBOUND, data=payload("tencent_reply.json"), headers=JSON
    )
    assert response.status == 200 and await response.json() == {"result": 0, "errmsg": "OK"}
    (reply,) = rig.recorder.replies
    assert (reply.provider, reply.phone, reply.text) == ("tencent", "+8613800138000", "满意7k3m")
    assert reply.received_at == datetime.fromtimestamp(1795227332, UTC)
    again = await rig.client.post(TENCENT_INBOUND, data=payload("tencent_reply.json"))
    assert again.status == 200 and rig.recorder.replies[1].dedupe_key == reply.dedupe_key


async def test_tencent_replies_as_an_array_are_read_the_same(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent")
    body = b"[" + payload("tencent_reply.json") + b"]"
    response = await rig.client.post(TENCENT_INBOUND, data=body, headers=JSON)
    assert response.status == 200 and [r.text for r in rig.recorder.replies] == ["满意7k3m"]


async def test_tencent_status_callback(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent")
    response = await rig.client.post(TENCENT_STATUS, data=payload("tencent_status.json"))
    assert response.status == 200 and await response.json() == {"result": 0, "errmsg": "OK"}
    assert rig.recorder.reports == [
        DeliveryReport(
            "sms", "2106:400081395817940735381823480", True, "DELIVRD", "用户短信送达成功"
        ),
        DeliveryReport("sms", "2106:400081395817940735381823481", False, "MK:0005", "用户手机关机"),
    ]


async def test_tencent_callback_without_the_secret_path_is_not_found(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent")
    response = await rig.client.post("/sms/tencent/inbound", data=payload("tencent_reply.json"))
    assert response.status == 404 and rig.recorder.replies == []
    assert (await rig.client.get(TENCENT_INBOUND)).status == 405  # no GET check at Tencent


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"mobile": "13800138000", "nationcode": "86", "text": "1"}',
            "time must be Unix seconds",
        ),
        (b'{"nationcode": "86", "text": "1", "time": 1795227332}', "mobile must be"),
        (b'[{"report_status": "MAYBE", "sid": "1"}]', "report_status must be SUCCESS or FAIL"),
    ],
)
async def test_malformed_tencent_callbacks(make_rig: MakeRig, body: bytes, message: str) -> None:
    rig = await make_rig("tencent")
    path = TENCENT_STATUS if body.startswith(b"[") else TENCENT_INBOUND
    response = await rig.client.post(path, data=body, headers=JSON)
    assert response.status == 400 and message in (await response.json())["message"]


# -- Twilio ----------------------------------------------------------------------------------------


def twilio_signature(url: str, body: bytes, token: str = TWILIO_TOKEN) -> str:
    """As Twilio's documentation describes it: the URL, then each name and value by name."""
    pairs = sorted(parse_qsl(body.decode(), keep_blank_values=True))
    signed = url + "".join(f"{name}{value}" for name, value in pairs)
    return base64.b64encode(
        hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()
    ).decode()


async def post_twilio(rig: Rig, path: str, body: bytes, signature: str | None = None) -> int:
    headers = dict(FORM)
    headers["X-Twilio-Signature"] = (
        twilio_signature(PUBLIC_URL + path, body) if signature is None else signature
    )
    return (await rig.client.post(path, data=body, headers=headers)).status


async def test_twilio_inbound_with_a_good_signature(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    body = payload("twilio_inbound.form")
    headers = {
        **FORM,
        "X-Twilio-Signature": twilio_signature(PUBLIC_URL + "/sms/twilio/inbound", body),
    }
    response = await rig.client.post("/sms/twilio/inbound", data=body, headers=headers)
    assert response.status == 200 and "text/xml" in response.headers["Content-Type"]
    assert await response.text() == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    (reply,) = rig.recorder.replies
    assert (reply.phone, reply.text) == ("+85291234567", "2 Fairly satisfied, thanks")
    assert reply.dedupe_key == "twilio:SM3f8a0bdc1f9e4b2c8d7e6f5a4b3c2d1e"


async def test_twilio_signature_over_the_url_with_its_port_is_accepted(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    body = payload("twilio_inbound.form")
    url = "https://minyi.example.gov.cn:443/sms/twilio/inbound"
    assert await post_twilio(rig, "/sms/twilio/inbound", body, twilio_signature(url, body)) == 200


async def test_twilio_signature_covers_the_query_string(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    body = payload("twilio_inbound.form")
    path = "/sms/twilio/inbound?office=north"
    assert await post_twilio(rig, path, body) == 200
    signed_without_query = twilio_signature(PUBLIC_URL + "/sms/twilio/inbound", body)
    assert await post_twilio(rig, path, body, signed_without_query) == 403


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("", "missing_signature"),
        ("bm90IHRoZSBzaWduYXR1cmU=", "bad_signature"),
        (
            twilio_signature("http://localhost/sms/twilio/inbound", payload("twilio_inbound.form")),
            "bad_signature",
        ),
        (
            twilio_signature(
                PUBLIC_URL + "/sms/twilio/inbound", payload("twilio_inbound.form"), "wrong-token"
            ),
            "bad_signature",
        ),
    ],
)
async def test_twilio_inbound_with_a_wrong_signature_is_forbidden(
    make_rig: MakeRig, signature: str, reason: str
) -> None:
    rig = await make_rig("twilio")
    response = await rig.client.post(
        "/sms/twilio/inbound",
        data=payload("twilio_inbound.form"),
        headers={**FORM, "X-Twilio-Signature": signature},
    )
    assert response.status == 403 and (await response.json())["error"] == "forbidden"
    assert rig.recorder.replies == []
    assert await rig.rejections(reason) == 1


async def test_a_tampered_twilio_body_is_forbidden(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    body = payload("twilio_inbound.form")
    signature = twilio_signature(PUBLIC_URL + "/sms/twilio/inbound", body)
    tampered = body.replace(b"Body=2+", b"Body=3+")
    assert await post_twilio(rig, "/sms/twilio/inbound", tampered, signature) == 403
    assert rig.recorder.replies == []


async def test_twilio_status_callbacks_pass_on_final_statuses_only(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    for name in (
        "twilio_status_sent.form",
        "twilio_status_delivered.form",
        "twilio_status_undelivered.form",
    ):
        assert await post_twilio(rig, "/sms/twilio/status", payload(name)) == 200
    assert rig.recorder.reports == [
        DeliveryReport("sms", "SMa1b2c3d4e5f60718293a4b5c6d7e8f90", True, "delivered", ""),
        DeliveryReport(
            "sms", "SMa1b2c3d4e5f60718293a4b5c6d7e8f91", False, "undelivered", "error 30003"
        ),
    ]
    unsigned = await rig.client.post(
        "/sms/twilio/status", data=payload("twilio_status_delivered.form"), headers=FORM
    )
    assert unsigned.status == 403 and len(rig.recorder.reports) == 2


async def test_a_signed_but_malformed_twilio_post_is_a_bad_request(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    body = b"MessageSid=SM1&Body=1"
    response = await rig.client.post(
        "/sms/twilio/inbound",
        data=body,
        headers={
            **FORM,
            "X-Twilio-Signature": twilio_signature(PUBLIC_URL + "/sms/twilio/inbound", body),
        },
    )
    assert response.status == 400 and "From is missing" in (await response.json())["message"]


# -- http ------------------------------------------------------------------------------------------


def signed(body: bytes, secret: str = HTTP_SECRET) -> dict[str, str]:
    return http_push_headers(body, secret)


async def test_http_pushes_up_to_64_kib_are_read_and_larger_refused(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    for size, status in ((64 * 1024, 200), (64 * 1024 + 1, 413)):
        head = json.dumps({"from": "+8613800138000", "id": f"big-{size}", "text": ""}).encode()
        body = head[:-2] + b"x" * (size - len(head)) + b'"}'
        assert len(body) == size
        response = await rig.client.post(
            "/sms/http/inbound",
            data=body,
            headers=signed(body),
        )
        assert response.status == status, size
    assert len(rig.recorder.replies) == 1
    # An empty reply is still a reply (the survey asks again); a GET is no push at all.
    body = json.dumps({"from": "+8613800138000", "text": "", "id": "empty-1"}).encode()
    headers = signed(body)
    assert (await rig.client.post("/sms/http/inbound", data=body, headers=headers)).status == 200
    assert rig.recorder.replies[-1].text == ""
    assert (await rig.client.get("/sms/http/inbound")).status == 405


async def test_http_inbound_with_a_good_signature(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    body = payload("http_inbound.json")
    response = await rig.client.post("/sms/http/inbound", data=body, headers=signed(body))
    assert response.status == 200 and await response.json() == {"status": "ok"}
    (reply,) = rig.recorder.replies
    assert (reply.phone, reply.text, reply.dedupe_key) == (
        "+8613800138000",
        "1",
        "http:gw-20261122-000042",
    )


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(None, "missing_signature"), ("00" * 32, "bad_signature"), ("wrong-secret", "bad_signature")],
)
async def test_http_inbound_with_a_wrong_signature_is_forbidden(
    make_rig: MakeRig, signature: str | None, reason: str
) -> None:
    rig = await make_rig("http")
    body = payload("http_inbound.json")
    headers = signed(body)
    if signature == "wrong-secret":
        headers = signed(body, "another-secret-0123456789")
    elif signature is None:
        del headers["X-Minyi-Signature"]
    else:
        headers["X-Minyi-Signature"] = signature
    response = await rig.client.post("/sms/http/inbound", data=body, headers=headers)
    assert response.status == 403 and rig.recorder.replies == []
    assert await rig.rejections(reason) == 1


async def test_http_delivery_report_extension(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    body = payload("http_status.json")
    headers_sent = signed(body)
    response = await rig.client.post("/sms/http/status", data=body, headers=headers_sent)
    assert response.status == 200
    (report,) = rig.recorder.reports
    assert report == DeliveryReport(
        "sms", "survey-17", False, "failed", "handset switched off", at=report.at
    )
    # The signed push time orders the reports of one message.
    assert report.at is not None and report.at.timestamp() == int(headers_sent["X-Minyi-Timestamp"])


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/sms/http/inbound", b'{"from": "+8613800138000", "text": "1"}', "id must be"),
        (
            "/sms/http/inbound",
            b'{"from": "hello", "text": "1", "id": "x"}',
            "from must be an E.164",
        ),
        ("/sms/http/inbound", b"[]", "must be a JSON object"),
        (
            "/sms/http/status",
            b'{"id": "x", "status": "lost"}',
            'status must be "delivered" or "failed"',
        ),
    ],
)
async def test_malformed_but_signed_http_bodies(
    make_rig: MakeRig, path: str, body: bytes, message: str
) -> None:
    rig = await make_rig("http")
    response = await rig.client.post(path, data=body, headers=signed(body))
    assert response.status == 400 and message in (await response.json())["message"]


async def test_only_the_configured_providers_routes_exist(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    for path in ("/sms/aliyun/inbound", "/sms/twilio/inbound", "/sms/tencent/status"):
        assert (await rig.client.post(path, data=b"[]")).status == 404


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no timestamp", "missing_timestamp"),
        ("an hour old", "stale_timestamp"),
        ("ten minutes ahead", "stale_timestamp"),
        ("the body alone signed", "missing_timestamp"),
        ("another time than signed", "bad_signature"),
    ],
)
async def test_http_pushes_carry_a_signed_time_within_five_minutes(
    make_rig: MakeRig, change: str, reason: str
) -> None:
    """A push seen once (in a log, on the wire) cannot be replayed later (issue 13)."""
    import time

    rig = await make_rig("http")
    body = payload("http_inbound.json")
    now = time.time()
    headers = {
        "no timestamp": {k: v for k, v in signed(body).items() if k != "X-Minyi-Timestamp"},
        "an hour old": http_push_headers(body, at=now - 3600),
        "ten minutes ahead": http_push_headers(body, at=now + 600),
        "the body alone signed": {
            **JSON,
            "X-Minyi-Signature": hmac.new(HTTP_SECRET.encode(), body, hashlib.sha256).hexdigest(),
        },
        "another time than signed": {**signed(body), "X-Minyi-Timestamp": str(int(now) - 1)},
    }[change]
    response = await rig.client.post("/sms/http/inbound", data=body, headers=headers)
    assert response.status == 403 and rig.recorder.replies == []
    assert await rig.rejections(reason) == 1
    # Four minutes old is still fine (clocks differ a little).
    fine = await rig.client.post(
        "/sms/http/inbound", data=body, headers=http_push_headers(body, at=now - 240)
    )
    assert fine.status == 200


# -- The real client behind a reverse proxy (issue 13) ---------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "forwarded", "status"),
    [
        (None, "106.11.2.3", 403),  # a header anyone can write is not believed
        ("127.0.0.1", "106.11.2.3", 200),  # the proxy we trust says who called
        ("127.0.0.1", "106.11.2.3, 198.51.100.7", 403),  # the client wrote the left part
        ("127.0.0.0/8", "10.9.9.9, 106.11.2.3", 200),  # the right-most untrusted hop counts
        ("127.0.0.1", "not-an-address", 403),
    ],
)
async def test_the_allow_list_sees_the_client_behind_a_trusted_proxy(
    make_rig: MakeRig, trusted: str | None, forwarded: str, status: int
) -> None:
    from channels.client import parse_networks

    extra: dict[str, object] = {"sms_webhook_allow": "106.11.0.0/16"}
    if trusted:
        extra["trusted_proxies"] = parse_networks("MINYI_TRUSTED_PROXIES", trusted)
    rig = await make_rig("aliyun", **extra)
    response = await rig.client.post(
        ALIYUN_INBOUND, data=payload("aliyun_smsup.json"), headers={"X-Forwarded-For": forwarded}
    )
    assert response.status == status


async def test_twilio_signs_the_url_the_trusted_proxy_was_called_at(make_rig: MakeRig) -> None:
    from channels.client import parse_networks

    rig_plain = await make_rig("twilio")
    rig_proxied = await make_rig(
        "twilio", trusted_proxies=parse_networks("MINYI_TRUSTED_PROXIES", "127.0.0.1")
    )
    body = b"MessageSid=SM0001&From=%2B8613800138000&To=%2B14155550100&Body=1"
    url = "https://sms.other-host.gov.cn/sms/twilio/inbound"
    headers = {
        **FORM,
        "X-Twilio-Signature": twilio_signature(url, body),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "sms.other-host.gov.cn",
    }
    assert (
        await rig_plain.client.post("/sms/twilio/inbound", data=body, headers=headers)
    ).status == 403
    assert (
        await rig_proxied.client.post("/sms/twilio/inbound", data=body, headers=headers)
    ).status == 200
