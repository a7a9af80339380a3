"""Sending through each provider's local fake: what really went out (signature or credentials,
the idempotency key, the template and its parameters), and how provider errors come back."""

from __future__ import annotations

import json

import pytest

from channels.base import DeliveryFailed, RecipientUnreachable
from channels.sms import SmsMessage
from conversation.messages import Choice, Reply

from .conftest import PUBLIC_URL, MakeRig
from .sms_fakes import ALIYUN_DAY_LIMIT, ALIYUN_ERRORS, tencent_error, tencent_status

SURVEY = SmsMessage(
    to="+8613800138000",
    template="survey",
    params={"ref": "7K3M"},
    text="您反映的事项（尾号7K3M）已办结，请评价，回复：1满意 2基本满意 3不满意，可附意见。回复TD退订",
    idempotency_key="survey-17",
)


# -- Alibaba ---------------------------------------------------------------------------------------


async def test_alibaba_send_is_signed_and_carries_the_out_id(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    biz_id = await rig.channel.send_sms(SURVEY)
    sent = rig.fake.last
    assert sent.authentic, "the fake recomputed Alibaba's signature and it did not match"
    assert biz_id == "932702304080400001^0"
    assert sent.fields["Action"] == "SendSms" and sent.fields["Version"] == "2017-05-25"
    assert sent.fields["PhoneNumbers"] == "13800138000"  # mainland numbers go without +86
    assert sent.fields["SignName"] == "民意热线" and sent.fields["TemplateCode"] == "SMS_100002"
    assert json.loads(sent.fields["TemplateParam"]) == {"ref": "7K3M"}
    assert sent.fields["OutId"] == "survey-17" and sent.fields["RegionId"] == "cn-hangzhou"
    await rig.channel.send_sms(SURVEY)
    assert rig.fake.last.authentic  # a fresh SignatureNonce each time


async def test_a_notice_goes_through_the_notice_template(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    await rig.channel.send("+8613800138000", [Reply("您的事项已受理。", (Choice("1", "查看"),))])
    sent = rig.fake.last
    assert sent.fields["TemplateCode"] == "SMS_100001"
    assert json.loads(sent.fields["TemplateParam"]) == {"text": "您的事项已受理。\n1 查看"}
    assert len(sent.fields["OutId"]) == 32


# What each of Alibaba's answers must become: unreachable, a wait, or a failure for good.
ALIYUN_OUTCOMES: dict[str, tuple[type[Exception], float | None]] = {
    "isv.MOBILE_NUMBER_ILLEGAL": (RecipientUnreachable, None),
    "isv.SMS_SIGNATURE_ILLEGAL": (DeliveryFailed, None),
    "isv.SMS_TEMPLATE_ILLEGAL": (DeliveryFailed, None),
    "isv.TEMPLATE_MISSING_PARAMETERS": (DeliveryFailed, None),
    "isv.INVALID_JSON_PARAM": (DeliveryFailed, None),
    "isv.BUSINESS_LIMIT_CONTROL": (DeliveryFailed, 3600.0),
    "isv.DAY_LIMIT_CONTROL": (DeliveryFailed, 3600.0),
    "isv.MONTH_LIMIT_CONTROL": (DeliveryFailed, 86400.0),
    "isv.AMOUNT_NOT_ENOUGH": (DeliveryFailed, None),
    "isv.OUT_OF_SERVICE": (DeliveryFailed, None),
    "isv.ACCOUNT_ABNORMAL": (DeliveryFailed, None),
    "isv.SMS_CONTENT_ILLEGAL": (DeliveryFailed, None),
    "isv.BLACK_KEY_CONTROL_LIMIT": (DeliveryFailed, None),
    "isv.PARAM_LENGTH_LIMIT": (DeliveryFailed, None),
    "VALVE:M_MC": (DeliveryFailed, 60.0),
    "Throttling.User": (DeliveryFailed, 1.0),
    "isp.SYSTEM_ERROR": (DeliveryFailed, 30.0),
}


def test_every_alibaba_code_the_fake_knows_has_an_outcome() -> None:
    assert set(ALIYUN_OUTCOMES) == set(ALIYUN_ERRORS)


@pytest.mark.parametrize("code", sorted(ALIYUN_OUTCOMES))
async def test_alibaba_errors(make_rig: MakeRig, code: str) -> None:
    error, retry_after = ALIYUN_OUTCOMES[code]
    rig = await make_rig("aliyun")
    rig.fake.fail_next_aliyun(code)
    with pytest.raises(error) as raised:
        await rig.channel.send_sms(SURVEY)
    assert type(raised.value) is error
    assert isinstance(raised.value, DeliveryFailed) and raised.value.retry_after == retry_after
    # The operator reads Alibaba's own words for it.
    assert code in str(raised.value) and ALIYUN_ERRORS[code] in str(raised.value)


@pytest.mark.parametrize(("status", "word"), [(503, "ServiceUnavailable"), (502, "Bad Gateway")])
async def test_alibaba_server_errors_are_retried(make_rig: MakeRig, status: int, word: str) -> None:
    rig = await make_rig("aliyun")
    rig.fake.fail_next(status, {"Code": word, "Message": word})
    with pytest.raises(DeliveryFailed) as raised:
        await rig.channel.send_sms(SURVEY)
    assert (raised.value.retry_after == 30.0 and str(status) in str(raised.value)) or word in str(
        raised.value
    )


async def test_alibabas_own_rules_come_back_as_the_right_failures(make_rig: MakeRig) -> None:
    """Nothing scripted: the fake refuses as Alibaba would, and the channel says what it means."""
    rig = await make_rig("aliyun")
    notice = SmsMessage(
        to="+8613800138000",
        template="notice",
        params={"text": "您的事项已受理。"},
        text="您的事项已受理。",
        idempotency_key="n",
    )
    for _ in range(ALIYUN_DAY_LIMIT):
        await rig.channel.send_sms(notice)
    with pytest.raises(DeliveryFailed, match=r"isv\.BUSINESS_LIMIT_CONTROL") as limited:
        await rig.channel.send_sms(notice)
    assert limited.value.retry_after == 3600.0  # tomorrow, not never
    await rig.channel.send_sms(SURVEY)  # another template to the same number still goes
    not_mobile = SmsMessage(
        to="+8612345678901",
        template="survey",
        params={"ref": "7K3M"},
        text="…",
        idempotency_key="x",
    )
    with pytest.raises(RecipientUnreachable, match="非法手机号"):
        await rig.channel.send_sms(not_mobile)
    wrong_sign = await make_rig("aliyun", sms_sign_name="民意热线二")
    with pytest.raises(DeliveryFailed, match=r"isv\.SMS_SIGNATURE_ILLEGAL") as unsigned:
        await wrong_sign.channel.send_sms(SURVEY)
    assert unsigned.value.retry_after is None and type(unsigned.value) is DeliveryFailed


async def test_a_wrong_alibaba_secret_is_refused_for_good(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun", sms_access_key_secret="not-the-secret")
    with pytest.raises(DeliveryFailed, match="SignatureDoesNotMatch") as raised:
        await rig.channel.send_sms(SURVEY)
    assert raised.value.retry_after is None and not rig.fake.last.authentic


async def test_a_template_without_a_code_is_a_clear_error(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    assert rig.channel.has_template("survey") and not rig.channel.has_template("clarify")
    clarify = SmsMessage(
        to="+8613800138000",
        template="clarify",
        params={"ref": "7K3M"},
        text="请回复1-3",
        idempotency_key="c-1",
    )
    with pytest.raises(DeliveryFailed, match="MINYI_SMS_TEMPLATE_CLARIFY") as raised:
        await rig.channel.send_sms(clarify)
    assert raised.value.retry_after is None and rig.fake.requests == []


async def test_parameters_must_match_the_template(make_rig: MakeRig) -> None:
    rig = await make_rig("aliyun")
    wrong = SmsMessage(
        to="+8613800138000", template="survey", params={"code": "X"}, text="…", idempotency_key="k"
    )
    with pytest.raises(DeliveryFailed, match="takes parameters ref, the message has code"):
        await rig.channel.send_sms(wrong)
    assert rig.fake.requests == []


# -- Tencent ---------------------------------------------------------------------------------------


async def test_tencent_send_is_signed_tc3_and_carries_the_session_context(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig("tencent")
    serial = await rig.channel.send_sms(SURVEY)
    sent = rig.fake.last
    assert sent.authentic, "the fake recomputed TC3-HMAC-SHA256 and it did not match"
    assert serial == "2106:400081395817940735381820001"
    assert sent.fields == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "民意热线",
        "TemplateId": "1000002",
        "TemplateParamSet": ["7K3M"],
        "SessionContext": "survey-17",
    }
    assert sent.headers["X-TC-Region"] == "ap-guangzhou"


async def test_tencent_parameters_follow_the_order_the_setting_gives(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent")  # MINYI_SMS_TEMPLATE_CLARIFY=1000003:refs,ref
    clarify = SmsMessage(
        to="+8613800138000",
        template="clarify",
        params={"ref": "7K3M", "refs": "7K3M、9Q2B"},
        text="您有两件事项待评价…",
        idempotency_key="clarify-3",
    )
    await rig.channel.send_sms(clarify)
    assert rig.fake.last.fields["TemplateParamSet"] == ["7K3M、9Q2B", "7K3M"]


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (tencent_status("LimitExceeded.PhoneNumberDailyLimit"), DeliveryFailed, 86400.0),
        (tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"), DeliveryFailed, 30.0),
        (tencent_status("FailedOperation.PhoneNumberInBlacklist"), RecipientUnreachable, None),
        (tencent_status("InvalidParameterValue.IncorrectPhoneNumber"), RecipientUnreachable, None),
        (tencent_status("FailedOperation.TemplateIncorrectOrUnapproved"), DeliveryFailed, None),
        (tencent_error("RequestLimitExceeded.UinLimitExceeded"), DeliveryFailed, 1.0),
        (tencent_error("InternalError.Timeout"), DeliveryFailed, 30.0),
        (tencent_error("UnauthorizedOperation.SmsSdkAppIdVerifyFail"), DeliveryFailed, None),
    ],
)
async def test_tencent_errors(
    make_rig: MakeRig, answer: dict[str, object], error: type[Exception], retry_after: float | None
) -> None:
    rig = await make_rig("tencent")
    rig.fake.fail_next(200, answer)
    with pytest.raises(error) as raised:
        await rig.channel.send_sms(SURVEY)
    assert type(raised.value) is error
    assert isinstance(raised.value, DeliveryFailed) and raised.value.retry_after == retry_after


async def test_a_wrong_tencent_key_is_refused_for_good(make_rig: MakeRig) -> None:
    rig = await make_rig("tencent", sms_access_key_secret="not-the-key")
    with pytest.raises(DeliveryFailed, match=r"AuthFailure\.SignatureFailure") as raised:
        await rig.channel.send_sms(SURVEY)
    assert raised.value.retry_after is None


# -- Twilio ----------------------------------------------------------------------------------------


async def test_twilio_send_uses_basic_auth_and_asks_for_status_callbacks(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio")
    sid = await rig.channel.send_sms(SURVEY)
    sent = rig.fake.last
    assert sent.authentic and sid == "SM" + "0" * 31 + "1"
    assert sent.path == "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    assert sent.fields == {
        "To": "+8613800138000",
        "From": "+14155550100",
        "Body": SURVEY.text,
        "StatusCallback": f"{PUBLIC_URL}/sms/twilio/status",
    }


async def test_twilio_messaging_service_sender(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio", sms_from="MG0123456789abcdef0123456789abcdef")
    await rig.channel.send_sms(SURVEY)
    assert rig.fake.last.fields["MessagingServiceSid"] == "MG0123456789abcdef0123456789abcdef"
    assert "From" not in rig.fake.last.fields


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (
            400,
            {"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
            {},
            RecipientUnreachable,
            None,
        ),
        (
            400,
            {"code": 21211, "message": "Invalid 'To' Phone Number"},
            {},
            RecipientUnreachable,
            None,
        ),
        (
            429,
            {"code": 20429, "message": "Too Many Requests"},
            {"Retry-After": "7"},
            DeliveryFailed,
            7.0,
        ),
        (503, {"code": 20500, "message": "Internal Server Error"}, {}, DeliveryFailed, 30.0),
        (
            400,
            {"code": 21408, "message": "Permission to send an SMS has not been enabled"},
            {},
            DeliveryFailed,
            None,
        ),
    ],
)
async def test_twilio_errors(
    make_rig: MakeRig,
    status: int,
    body: dict[str, object],
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    rig = await make_rig("twilio")
    rig.fake.fail_next(status, body, headers)
    with pytest.raises(error) as raised:
        await rig.channel.send_sms(SURVEY)
    assert type(raised.value) is error
    assert isinstance(raised.value, DeliveryFailed) and raised.value.retry_after == retry_after


async def test_a_wrong_twilio_token_is_refused_for_good(make_rig: MakeRig) -> None:
    rig = await make_rig("twilio", sms_auth_token="not-the-token")
    with pytest.raises(DeliveryFailed, match="20003") as raised:
        await rig.channel.send_sms(SURVEY)
    assert raised.value.retry_after is None


# -- http ------------------------------------------------------------------------------------------


async def test_http_send_follows_the_contract_and_is_signed(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    message_id = await rig.channel.send_sms(SURVEY)
    sent = rig.fake.last
    assert sent.authentic and sent.path == "/send"
    assert sent.fields == {"to": "+8613800138000", "text": SURVEY.text, "id": "survey-17"}
    assert message_id == "survey-17"
    assert rig.channel.has_template("clarify")  # free text: any message can go
    for status in (200, 299):  # any 2xx is taken
        rig.fake.fail_next(status, {})
        assert await rig.channel.send_sms(SURVEY) == "survey-17"
    assert "满意".encode() in sent.body and b"\\u" not in sent.body  # UTF-8, not \u escapes


async def test_http_send_puts_the_signature_name_in_front_when_set(make_rig: MakeRig) -> None:
    rig = await make_rig("http", sms_sign_name="民意热线")
    await rig.channel.send_sms(SURVEY)
    assert rig.fake.last.fields["text"] == "【民意热线】" + SURVEY.text


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retry_after"),
    [
        (503, {}, {"Retry-After": "12"}, DeliveryFailed, 12.0),
        (500, {}, {}, DeliveryFailed, 30.0),
        (429, {}, {}, DeliveryFailed, 30.0),  # slow down: later, not never
        (300, {}, {}, DeliveryFailed, None),  # not a 2xx: not sent
        (499, {}, {}, DeliveryFailed, None),  # the last client error: not worth a retry
        (400, ["not", "an", "object"], {}, DeliveryFailed, None),  # an odd error body
        (
            422,
            {"error": "unreachable", "message": "number opted out"},
            {},
            RecipientUnreachable,
            None,
        ),
        (400, {"error": "bad_text", "message": "too long"}, {}, DeliveryFailed, None),
    ],
)
async def test_http_gateway_errors(
    make_rig: MakeRig,
    status: int,
    body: dict[str, object],
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    rig = await make_rig("http")
    rig.fake.fail_next(status, body, headers)
    with pytest.raises(error) as raised:
        await rig.channel.send_sms(SURVEY)
    assert type(raised.value) is error
    assert isinstance(raised.value, DeliveryFailed) and raised.value.retry_after == retry_after
    if isinstance(body, dict) and "error" in body:  # the gateway's own words reach the log
        assert f"({body['error']}: {body['message']})" in str(raised.value)
    else:
        assert "None" not in str(raised.value)


# -- every provider --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["aliyun", "tencent", "twilio", "http"])
async def test_an_unreachable_api_is_a_retryable_failure(make_rig: MakeRig, provider: str) -> None:
    rig = await make_rig(provider, sms_api_base="http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(DeliveryFailed, match="could not reach the SMS API") as raised:
        await rig.channel.send_sms(SURVEY)
    assert raised.value.retry_after == 30.0


async def test_a_recipient_that_is_no_phone_number_is_unreachable(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    with pytest.raises(RecipientUnreachable):
        await rig.channel.send("openid-oXyz", [Reply("您好")])
    await rig.channel.send("+8613800138000", [])  # nothing to say: nothing sent
    assert rig.fake.requests == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": "13800138000"}, "E.164"),
        ({"template": "Survey!"}, "not a template name"),
        ({"text": "  "}, "must not be empty"),
        ({"idempotency_key": "has spaces"}, "idempotency_key"),
        ({"params": {"ref": 7}}, "strings"),
    ],
)
def test_an_sms_message_is_checked_when_made(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "to": "+8613800138000",
        "template": "survey",
        "params": {"ref": "7K3M"},
        "text": "请评价",
        "idempotency_key": "survey-17",
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        SmsMessage(**fields)  # type: ignore[arg-type]
    assert "13800138000" not in repr(SURVEY)
