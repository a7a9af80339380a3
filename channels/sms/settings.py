"""The `MINYI_SMS_*` settings: which provider, its credentials and templates, and how its
webhooks are guarded (channels/sms/config.py says which provider needs what)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..settings import SettingError, Spec, one_of, text, url
from .config import (
    PROVIDERS,
    TEMPLATE_SETTINGS,
    SmsConfig,
    SmsConfigError,
    parse_allow_list,
    parse_template,
)


def _allow_list(name: str, value: str) -> str:
    try:
        parse_allow_list(name, value)
    except SmsConfigError as exc:
        raise SettingError(str(exc)) from None
    return value


def _template(template: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        try:
            parse_template(name, value, template)
        except SmsConfigError as exc:
            raise SettingError(str(exc)) from None
        return value

    return parse


SETTINGS = (
    Spec("MINYI_SMS_PROVIDER", one_of(*PROVIDERS)),
    Spec("MINYI_SMS_API_BASE", url("http", "https")),
    Spec("MINYI_SMS_WEBHOOK_SECRET", text),
    Spec("MINYI_SMS_WEBHOOK_ALLOW", _allow_list),
    Spec("MINYI_SMS_ACCESS_KEY_ID", text),
    Spec("MINYI_SMS_ACCESS_KEY_SECRET", text),
    Spec("MINYI_SMS_SIGN_NAME", text),
    Spec("MINYI_SMS_APP_ID", text),
    Spec("MINYI_SMS_REGION", text),
    *(Spec(variable, _template(name)) for name, variable in TEMPLATE_SETTINGS.items()),
    Spec("MINYI_SMS_ACCOUNT_SID", text),
    Spec("MINYI_SMS_AUTH_TOKEN", text),
    Spec("MINYI_SMS_FROM", text),
)


def configure(values: Mapping[str, Any]) -> SmsConfig | None:
    """The SMS channel's settings, or None when SMS is off (MINYI_SMS_PROVIDER unset); refuses
    settings that cannot work, or would leave webhooks unauthenticated."""
    if not values["sms_provider"]:
        return None
    try:
        templates = {
            name: parse_template(variable, value, name)
            for name, variable in TEMPLATE_SETTINGS.items()
            if (value := values[f"sms_template_{name}"])
        }
        allow = values["sms_webhook_allow"]
        config = SmsConfig(
            provider=values["sms_provider"],
            api_base=values["sms_api_base"] or "",
            access_key_id=values["sms_access_key_id"] or "",
            access_key_secret=values["sms_access_key_secret"] or "",
            sign_name=values["sms_sign_name"] or "",
            app_id=values["sms_app_id"] or "",
            region=values["sms_region"] or "",
            templates=templates,
            account_sid=values["sms_account_sid"] or "",
            auth_token=values["sms_auth_token"] or "",
            sender=values["sms_from"] or "",
            webhook_secret=values["sms_webhook_secret"] or "",
            allow=parse_allow_list("MINYI_SMS_WEBHOOK_ALLOW", allow) if allow else (),
            public_url=values.get("public_url") or "",
        )
        config.check()
    except SmsConfigError as exc:
        raise SettingError(str(exc)) from None
    return config
