"""SMS settings as the channel needs them, checked so that no deployment starts half-configured
or with webhooks anyone could call. Errors name the MINYI_* variable to fix, in one line."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..client import parse_networks
from ..settings import SettingError

PROVIDERS = ("aliyun", "tencent", "twilio", "http")
# These send approved templates only; their pushes carry no signature (protocols.md §3.1, §3.2).
TEMPLATE_PROVIDERS = ("aliyun", "tencent")
DEFAULT_API_BASE = {
    "aliyun": "https://dysmsapi.aliyuncs.com",
    "tencent": "https://sms.tencentcloudapi.com",
    "twilio": "https://api.twilio.com",
}
DEFAULT_REGION = {"aliyun": "cn-hangzhou", "tencent": "ap-guangzhou"}
# Logical templates, the variable naming each one's provider code, and the parameters it is
# filled with (in this order for Tencent, whose templates are positional {1}, {2}) unless the
# setting lists others: MINYI_SMS_TEMPLATE_SURVEY=SMS_123456:ref,days.
TEMPLATE_SETTINGS = {
    "survey": "MINYI_SMS_TEMPLATE_SURVEY",
    "clarify": "MINYI_SMS_TEMPLATE_CLARIFY",
    "notice": "MINYI_SMS_TEMPLATE_NOTICE",
    "verification": "MINYI_SMS_TEMPLATE_VERIFICATION",  # the 验证码 that proves a citizen
}
DEFAULT_TEMPLATE_PARAMS = {
    "survey": ("ref",),
    "clarify": ("ref",),
    "notice": ("text",),
    "verification": ("code",),
}
MIN_SECRET = 16
_PATH_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
_TEMPLATE = re.compile(r"([A-Za-z0-9_-]{1,64})(?::([a-z_][a-z0-9_]*(?:,[a-z_][a-z0-9_]*)*))?")
_E164 = re.compile(r"\+[1-9]\d{6,14}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SmsConfigError(ValueError):
    """One line naming the variable and what is wrong with it."""


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """An approved template: its provider code and the names of its parameters, in order."""

    code: str
    params: tuple[str, ...] = ()


def parse_template(variable: str, value: str, name: str) -> TemplateSpec:
    """`SMS_123456` or `SMS_123456:ref,days` (the parameter names, in the template's order)."""
    match = _TEMPLATE.fullmatch(value.strip())
    if not match:
        raise SmsConfigError(
            f"{variable}: {value!r} is not a template code, optionally followed by "
            "':' and its parameter names (e.g. SMS_123456 or 1234567:ref)"
        )
    names = tuple(match.group(2).split(",")) if match.group(2) else ()
    return TemplateSpec(match.group(1), names or DEFAULT_TEMPLATE_PARAMS.get(name, ()))


def parse_allow_list(variable: str, value: str) -> tuple[Network, ...]:
    """`203.0.113.7, 198.51.100.0/24`: the addresses a provider's pushes may come from."""
    try:
        return parse_networks(variable, value)
    except SettingError as exc:
        raise SmsConfigError(str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class SmsConfig:
    """Everything the SMS channel reads from settings; `check()` refuses what cannot work."""

    provider: str
    api_base: str = ""
    access_key_id: str = ""  # Alibaba AccessKey ID, Tencent SecretId
    access_key_secret: str = ""  # Alibaba AccessKey secret, Tencent SecretKey
    sign_name: str = ""  # the approved 签名, shown as 【签名】
    app_id: str = ""  # Tencent SmsSdkAppId
    region: str = ""  # Alibaba RegionId, Tencent Region
    templates: Mapping[str, TemplateSpec] = field(default_factory=dict)
    account_sid: str = ""  # Twilio
    auth_token: str = ""  # Twilio
    sender: str = ""  # Twilio From number or Messaging Service SID (MG…)
    webhook_secret: str = ""
    allow: tuple[Network, ...] = ()
    public_url: str = ""

    @property
    def base_url(self) -> str:
        return (self.api_base or DEFAULT_API_BASE.get(self.provider, "")).rstrip("/")

    @property
    def region_name(self) -> str:
        return self.region or DEFAULT_REGION.get(self.provider, "")

    @property
    def path_secret(self) -> str | None:
        """The secret path segment guarding unsigned pushes (Alibaba, Tencent), if set."""
        if self.provider in TEMPLATE_PROVIDERS and self.webhook_secret:
            return self.webhook_secret
        return None

    def check(self) -> None:
        if self.provider not in PROVIDERS:
            raise SmsConfigError(
                f"MINYI_SMS_PROVIDER: {self.provider!r} is not one of {', '.join(PROVIDERS)}"
            )
        getattr(self, f"_check_{self.provider}")()

    def _required(self, variable: str, value: str, why: str = "") -> None:
        if not value:
            raise SmsConfigError(
                f"{variable}: required for MINYI_SMS_PROVIDER={self.provider}{why}"
            )

    def _check_templates_and_protection(self) -> None:
        self._required("MINYI_SMS_ACCESS_KEY_ID", self.access_key_id)
        self._required("MINYI_SMS_ACCESS_KEY_SECRET", self.access_key_secret)
        self._required("MINYI_SMS_SIGN_NAME", self.sign_name, " (the approved 签名)")
        if "notice" not in self.templates:
            raise SmsConfigError(
                f"MINYI_SMS_TEMPLATE_NOTICE: required for MINYI_SMS_PROVIDER={self.provider} "
                "(an approved template with one parameter, the text of a notice)"
            )
        if self.webhook_secret and not _PATH_SECRET.fullmatch(self.webhook_secret):
            raise SmsConfigError(
                "MINYI_SMS_WEBHOOK_SECRET: with this provider it is a secret URL path segment: "
                "use 16-128 letters, digits, '-' or '_'"
            )
        if not self.webhook_secret and not self.allow:
            raise SmsConfigError(
                f"MINYI_SMS_WEBHOOK_SECRET: required for MINYI_SMS_PROVIDER={self.provider} "
                "unless MINYI_SMS_WEBHOOK_ALLOW lists the provider's addresses: its pushes "
                "carry no signature"
            )

    def _check_aliyun(self) -> None:
        self._check_templates_and_protection()

    def _check_tencent(self) -> None:
        self._check_templates_and_protection()
        self._required("MINYI_SMS_APP_ID", self.app_id, " (the SmsSdkAppId)")

    def _check_twilio(self) -> None:
        self._required("MINYI_SMS_ACCOUNT_SID", self.account_sid)
        self._required("MINYI_SMS_AUTH_TOKEN", self.auth_token)
        self._required("MINYI_SMS_FROM", self.sender)
        if not (_E164.fullmatch(self.sender) or self.sender.startswith("MG")):
            raise SmsConfigError(
                f"MINYI_SMS_FROM: {self.sender!r} is neither an E.164 number (+15005550006) "
                "nor a Messaging Service SID (MG…)"
            )
        self._required(
            "MINYI_PUBLIC_URL", self.public_url, " (Twilio signs the public URL it calls)"
        )
        if urlsplit(self.public_url).scheme not in ("http", "https"):
            raise SmsConfigError(f"MINYI_PUBLIC_URL: {self.public_url!r} is not an http(s) URL")

    def _check_http(self) -> None:
        self._required("MINYI_SMS_API_BASE", self.api_base)
        self._required("MINYI_SMS_WEBHOOK_SECRET", self.webhook_secret)
        if len(self.webhook_secret) < MIN_SECRET:
            raise SmsConfigError(
                f"MINYI_SMS_WEBHOOK_SECRET: use at least {MIN_SECRET} characters "
                f"(this one has {len(self.webhook_secret)})"
            )
