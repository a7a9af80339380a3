"""Each provider's signature against the example worked in that provider's own documentation."""

from __future__ import annotations

import hashlib
import hmac

from channels.sms.aliyun import percent_encode, rpc_signature
from channels.sms.common import dedupe_key, mask_phone, to_e164
from channels.sms.http import body_signature
from channels.sms.tencent import tc3_authorization
from channels.sms.twilio import twilio_signature, url_variants


def test_alibaba_sms_signature_example() -> None:
    # help.aliyun.com/document_detail/56189 (短信服务 HTTP 协议及签名): the SendSms example.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert rpc_signature(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert rpc_signature({**params, "Signature": "old"}, "testSecret", "GET") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )


def test_alibaba_rpc_signature_example() -> None:
    # The RPC 签名机制 page's DescribeRegions example.
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert rpc_signature(params, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_alibaba_percent_encoding() -> None:
    assert percent_encode("a b*c~d") == "a%20b%2Ac~d"
    assert percent_encode("/=&+") == "%2F%3D%26%2B"
    assert percent_encode("阿") == "%E9%98%BF"


def test_tencent_tc3_example() -> None:
    # cloud.tencent.com/document/api/213/30654 (签名方法 v3): the DescribeInstances example.
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        host="cvm.tencentcloudapi.com",
        payload=b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
        b'"Name": "instance-name"}]}',
        timestamp=1551113065,
        service="cvm",
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_twilio_signature_example() -> None:
    # twilio/twilio-python tests/unit/test_request_validator.py: auth token 12345.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ]
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # The same request signed with the default port (the SDK accepts both forms).
    with_port = url.replace(".com", ".com:443")
    assert twilio_signature("12345", with_port, params) == "kvajT1Ptam85bY51eRf/AJRuM3w="
    assert url_variants(url) == (url, with_port)
    assert url_variants("http://h:8080/x?y=1") == ("http://h/x?y=1", "http://h:8080/x?y=1")


def test_http_provider_signature() -> None:
    # CONTRACTS.md: hex HMAC-SHA256 of the raw body with MINYI_SMS_WEBHOOK_SECRET.
    body = b'{"from": "+8613800138000", "text": "1", "id": "gw-1"}'
    assert body_signature("secret", body) == hmac.new(b"secret", body, hashlib.sha256).hexdigest()


def test_phones_and_keys() -> None:
    assert to_e164("13800138000") == "+8613800138000"
    assert to_e164("8613800138000") == "+8613800138000"
    assert to_e164("008613800138000") == "+8613800138000"
    assert to_e164("13800138000", "86") == "+8613800138000"
    assert to_e164("91234567", "852") == "+85291234567"
    assert to_e164("+85291234567") == "+85291234567"
    assert to_e164("1381111****") is None and to_e164("") is None and to_e164("12") is None
    assert mask_phone("+8613800138000") == "+86138****8000"
    assert dedupe_key("aliyun", "a", 1, None) == dedupe_key("aliyun", "a", "1", "")
    assert dedupe_key("aliyun", "a", "b") != dedupe_key("aliyun", "ab", "")
