"""SMS settings: each mistake stops start-up with one line naming its variable, and no provider
without request signatures can run with its webhooks open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app.settings import SettingsError, load_settings
from bot.app.wiring import build_minyi
from channels.sms import SmsChannel, SmsReply, WebhookGuard
from channels.sms.aliyun import AliyunSms
from channels.sms.config import SmsConfig
from tests.conftest import sqlite_settings

ALIYUN = {
    "MINYI_SMS_PROVIDER": "aliyun",
    "MINYI_SMS_ACCESS_KEY_ID": "LTAI5t",
    "MINYI_SMS_ACCESS_KEY_SECRET": "secret",
    "MINYI_SMS_SIGN_NAME": "民意热线",
    "MINYI_SMS_TEMPLATE_NOTICE": "SMS_1",
    "MINYI_SMS_WEBHOOK_SECRET": "path-secret-0123456789",
}
TENCENT = {**ALIYUN, "MINYI_SMS_PROVIDER": "tencent", "MINYI_SMS_APP_ID": "1400006666"}
TWILIO = {
    "MINYI_SMS_PROVIDER": "twilio",
    "MINYI_SMS_ACCOUNT_SID": "AC0123",
    "MINYI_SMS_AUTH_TOKEN": "token",
    "MINYI_SMS_FROM": "+14155550100",
    "MINYI_PUBLIC_URL": "https://minyi.example.gov.cn",
}
HTTP = {
    "MINYI_SMS_PROVIDER": "http",
    "MINYI_SMS_API_BASE": "https://gateway.example",
    "MINYI_SMS_WEBHOOK_SECRET": "0123456789abcdef",
}


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key != name}


def _load(tmp_path: Path, env: dict[str, str]) -> Any:
    empty = tmp_path / "minyi.toml"
    empty.write_text("", "utf-8")
    return load_settings(env, config_file=empty)


@pytest.mark.parametrize(
    "env", [ALIYUN, TENCENT, TWILIO, HTTP], ids=["aliyun", "tencent", "twilio", "http"]
)
def test_complete_settings_load(tmp_path: Path, env: dict[str, str]) -> None:
    assert _load(tmp_path, env).channel("sms").provider == env["MINYI_SMS_PROVIDER"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (without(ALIYUN, "MINYI_SMS_WEBHOOK_SECRET"), "MINYI_SMS_WEBHOOK_SECRET"),
        (without(TENCENT, "MINYI_SMS_WEBHOOK_SECRET"), "MINYI_SMS_WEBHOOK_SECRET"),
        ({**ALIYUN, "MINYI_SMS_WEBHOOK_SECRET": "short"}, "MINYI_SMS_WEBHOOK_SECRET"),
        (
            {**ALIYUN, "MINYI_SMS_WEBHOOK_SECRET": "has/a/slash/0123456789"},
            "MINYI_SMS_WEBHOOK_SECRET",
        ),
        (without(ALIYUN, "MINYI_SMS_ACCESS_KEY_ID"), "MINYI_SMS_ACCESS_KEY_ID"),
        (without(ALIYUN, "MINYI_SMS_ACCESS_KEY_SECRET"), "MINYI_SMS_ACCESS_KEY_SECRET"),
        (without(ALIYUN, "MINYI_SMS_SIGN_NAME"), "MINYI_SMS_SIGN_NAME"),
        (without(ALIYUN, "MINYI_SMS_TEMPLATE_NOTICE"), "MINYI_SMS_TEMPLATE_NOTICE"),
        ({**ALIYUN, "MINYI_SMS_TEMPLATE_SURVEY": "SMS 1"}, "MINYI_SMS_TEMPLATE_SURVEY"),
        ({**ALIYUN, "MINYI_SMS_TEMPLATE_CLARIFY": "SMS_1:Ref"}, "MINYI_SMS_TEMPLATE_CLARIFY"),
        (
            {**ALIYUN, "MINYI_SMS_WEBHOOK_ALLOW": "106.11.0.0/16, nowhere"},
            "MINYI_SMS_WEBHOOK_ALLOW",
        ),
        ({**ALIYUN, "MINYI_SMS_WEBHOOK_ALLOW": " , "}, "MINYI_SMS_WEBHOOK_ALLOW"),
        (without(TENCENT, "MINYI_SMS_APP_ID"), "MINYI_SMS_APP_ID"),
        (without(TWILIO, "MINYI_PUBLIC_URL"), "MINYI_PUBLIC_URL"),
        (without(TWILIO, "MINYI_SMS_AUTH_TOKEN"), "MINYI_SMS_AUTH_TOKEN"),
        ({**TWILIO, "MINYI_SMS_FROM": "Minyi"}, "MINYI_SMS_FROM"),
        (without(HTTP, "MINYI_SMS_WEBHOOK_SECRET"), "MINYI_SMS_WEBHOOK_SECRET"),
        ({**HTTP, "MINYI_SMS_WEBHOOK_SECRET": "short"}, "MINYI_SMS_WEBHOOK_SECRET"),
        (without(HTTP, "MINYI_SMS_API_BASE"), "MINYI_SMS_API_BASE"),
        ({**HTTP, "MINYI_SMS_API_BASE": "gateway.example"}, "MINYI_SMS_API_BASE"),
    ],
)
def test_a_wrong_sms_setting_names_its_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as error:
        _load(tmp_path, env)
    assert str(error.value).startswith(variable + ":")
    assert "\n" not in str(error.value)


def test_an_allow_list_may_replace_the_secret_path(tmp_path: Path) -> None:
    env = {
        **without(ALIYUN, "MINYI_SMS_WEBHOOK_SECRET"),
        "MINYI_SMS_WEBHOOK_ALLOW": "106.11.0.0/16",
    }
    assert [str(n) for n in _load(tmp_path, env).channel("sms").allow] == ["106.11.0.0/16"]


def test_unprotected_webhooks_are_refused_even_without_load_settings(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^MINYI_SMS_WEBHOOK_SECRET: required"):
        sqlite_settings(
            tmp_path,
            sms_provider="tencent",
            sms_access_key_id="id",
            sms_access_key_secret="key",
            sms_sign_name="民意热线",
            sms_app_id="1400006666",
            sms_template_notice="1000001",
        )


async def _noop(reply: SmsReply) -> None:
    return None


def test_the_channel_itself_refuses_an_unsigned_provider_without_a_guard() -> None:
    config = SmsConfig(provider="aliyun", access_key_id="id", access_key_secret="s")
    with pytest.raises(ValueError, match="carry no signature"):
        SmsChannel(AliyunSms(config), _noop, WebhookGuard())


def test_sms_is_in_the_registry_only_when_a_provider_is_set(tmp_path: Path) -> None:
    assert "sms" not in build_minyi(sqlite_settings(tmp_path)).channels
    settings = sqlite_settings(
        tmp_path,
        sms_provider="http",
        sms_api_base="https://gateway.example",
        sms_webhook_secret="0123456789abcdef",
    )
    assert isinstance(build_minyi(settings).channels["sms"], SmsChannel)


def test_settings_made_in_code_are_checked_as_well(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^MINYI_SMS_WEBHOOK_ALLOW: 'not-an-address'"):
        sqlite_settings(
            tmp_path,
            sms_provider="http",
            sms_api_base="https://gateway.example",
            sms_webhook_secret="0123456789abcdef",
            sms_webhook_allow="not-an-address",
        )
