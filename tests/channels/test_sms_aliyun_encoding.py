"""Alibaba's percent-encoding and RPC signature, table-free, against what `urllib.parse.quote`
gives: the signature is computed by the provider from the bytes it gets, so one character
encoded differently is a refused SMS."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from hypothesis import given
from hypothesis import strategies as st

from channels.sms.aliyun import percent_encode, rpc_signature, signed_body

# Any text with a UTF-8 form (hypothesis leaves lone surrogates out; neither encoder takes them).
TEXT = st.text()


def quoted(value: str) -> str:
    return quote(value, safe="")


def signature_by_quote(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """The signature as Alibaba's documentation builds it, with `quote` at every step."""
    canonical = "&".join(
        f"{quoted(name)}={quoted(value)}"
        for name, value in sorted(params.items())
        if name != "Signature"
    )
    string_to_sign = f"{method}&{quoted('/')}&{quoted(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@given(TEXT)
def test_percent_encode_is_quote(value: str) -> None:
    assert percent_encode(value) == quoted(value)


@given(
    st.dictionaries(TEXT.filter(bool), TEXT.filter(bool) | st.just("民意热线 1 满意*~"), max_size=8)
)
def test_signature_and_body_are_the_documented_ones(params: dict[str, str]) -> None:
    expected = signature_by_quote(params, "secret")
    assert rpc_signature(params, "secret") == expected
    assert rpc_signature(params, "secret", "GET") == signature_by_quote(params, "secret", "GET")
    body = signed_body(params, "secret")
    # The body: every parameter in its order, then the signature, each encoded as `quote` does.
    plain = {k: v for k, v in params.items() if k != "Signature"}
    assert body == "&".join(
        f"{quoted(k)}={quoted(v)}" for k, v in [*plain.items(), ("Signature", expected)]
    )
    assert parse_qsl(body, keep_blank_values=True) == [*plain.items(), ("Signature", expected)]


def test_encoding_of_an_sms_parameter() -> None:
    assert percent_encode('{"code":"XF-1","text":"1 满意"}') == (
        "%7B%22code%22%3A%22XF-1%22%2C%22text%22%3A%221%20%E6%BB%A1%E6%84%8F%22%7D"
    )
    assert percent_encode("") == ""
    assert percent_encode("%25") == "%2525"
