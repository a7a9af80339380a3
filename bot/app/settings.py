"""Settings from the environment and an optional `minyi.toml`; a wrong value stops start-up.

Each setting is one `MINYI_*` variable (CONTRACTS.md). The TOML file may use the same names or
their short lowercase form (`database_url`); the environment wins over the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from channels.sms.config import (
    PROVIDERS,
    TEMPLATE_SETTINGS,
    SmsConfig,
    SmsConfigError,
    parse_allow_list,
    parse_template,
)

SMS_PROVIDERS = PROVIDERS


class SettingsError(ValueError):
    """One line naming the variable and what is wrong with it."""


def _url(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise SettingsError(
                f"{name}: {value!r} is not a valid URL (expected {' or '.join(schemes)}://host…)"
            )
        return value.rstrip("/")

    return parse


def _database_url(name: str, value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise SettingsError(
            f"{name}: {value!r} is not a database URL (e.g. postgresql+asyncpg://user@host/db)"
        ) from None
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"{name}: use sqlite+aiosqlite:///path or postgresql+asyncpg://…, not {url.drivername}"
        )
    return value


def _number(convert: Callable[[str], float], low: float, high: float) -> Callable[[str, str], Any]:
    """A whole number (`convert=int`) or any number (`float`) within [low, high]."""
    kind = "a whole number" if convert is int else "a number"

    def parse(name: str, value: str) -> Any:
        try:
            number = convert(value)
        except ValueError:
            raise SettingsError(f"{name}: {value!r} is not {kind}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name}: {number} is outside {low}–{high}")
        return number

    return parse


def _one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise SettingsError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _scale(name: str, value: str) -> int:
    if value not in ("3", "5"):
        raise SettingsError(
            f"{name}: {value!r} is not a satisfaction scale; use 3 (满意/基本满意/不满意) or 5 (好差评)"
        )
    return int(value)


def _aes_key(name: str, value: str) -> str:
    if len(value) != 43:
        raise SettingsError(
            f"{name}: the EncodingAESKey must be 43 characters, this one has {len(value)}"
        )
    return value


def _telegram_token(name: str, value: str) -> str:
    # The token becomes part of every Bot API path, so anything but BotFather's shape is refused.
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value):
        raise SettingsError(
            f"{name}: not a bot token (BotFather gives one like 123456789:AAH…, digits, a colon, "
            "then letters, digits, '-' or '_')"
        )
    return value


def _telegram_secret(name: str, value: str) -> str:
    # Telegram's own rule for setWebhook's secret_token; it refuses anything else.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
        raise SettingsError(
            f"{name}: must be 1-256 characters of A-Z, a-z, 0-9, '_' or '-' (Telegram's rule "
            "for a webhook secret token)"
        )
    return value


def _timezone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
    return value


def _path(name: str, value: str) -> str:
    if not Path(value).is_file():
        raise SettingsError(f"{name}: file {value!r} does not exist")
    return value


def _quiet_hours(name: str, value: str) -> str:
    if value:
        try:
            start, end = value.split("-")
            time.fromisoformat(start.strip())
            time.fromisoformat(end.strip())
        except ValueError:
            raise SettingsError(
                f"{name}: {value!r} must look like 21:00-08:00, or be empty"
            ) from None
    return value


def _text(name: str, value: str) -> str:
    return value


_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TEMPLATE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _field_map(name: str, value: str) -> tuple[tuple[str, str], ...]:
    """`code=character_string1,status=phrase2`: our field names to a template's own keys."""
    if not value:
        return ()
    pairs = []
    for item in value.split(","):
        ours, _, theirs = (part.strip() for part in item.partition("="))
        if not _FIELD_NAME.fullmatch(ours) or not _TEMPLATE_KEY.fullmatch(theirs):
            raise SettingsError(
                f"{name}: {item.strip()!r} must look like code=character_string1 "
                "(our field = the template's key, pairs separated by commas)"
            )
        pairs.append((ours, theirs))
    if len({ours for ours, _ in pairs}) != len(pairs):
        raise SettingsError(f"{name}: a field is mapped twice in {value!r}")
    return tuple(pairs)


def _sms_allow_list(name: str, value: str) -> str:
    try:
        parse_allow_list(name, value)
    except SmsConfigError as exc:
        raise SettingsError(str(exc)) from None
    return value


def _sms_template(template: str) -> Callable[[str, str], str]:
    def parse(name: str, value: str) -> str:
        try:
            parse_template(name, value, template)
        except SmsConfigError as exc:
            raise SettingsError(str(exc)) from None
        return value

    return parse


def _spec(env: str, parse: Callable[[str, str], Any] = _text, default: Any = None) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse})


@dataclass(frozen=True)
class Settings:
    database_url: str = _spec("MINYI_DATABASE_URL", _database_url, "sqlite+aiosqlite:///./minyi.db")
    redis_url: str | None = _spec("MINYI_REDIS_URL", _url("redis", "rediss", "unix"))
    redis_prefix: str = _spec("MINYI_REDIS_PREFIX", default="minyi:")
    stream: str = _spec("MINYI_STREAM", default="minyi:events")
    api_token: str | None = _spec("MINYI_API_TOKEN")
    pii_key: str | None = _spec("MINYI_PII_KEY")
    office_config: str | None = _spec("MINYI_OFFICE_CONFIG", _path)
    timezone: str = _spec("MINYI_TIMEZONE", _timezone, "Asia/Shanghai")
    session_hours: int = _spec("MINYI_SESSION_HOURS", _number(int, 1, 24 * 30), 24)
    survey_scale: int = _spec("MINYI_SURVEY_SCALE", _scale, 3)
    survey_days: int = _spec("MINYI_SURVEY_DAYS", _number(int, 1, 90), 7)
    survey_quiet_hours: str = _spec("MINYI_SURVEY_QUIET_HOURS", _quiet_hours, "21:00-08:00")
    public_url: str | None = _spec("MINYI_PUBLIC_URL", _url("http", "https"))
    log_level: str = _spec("MINYI_LOG_LEVEL", _one_of("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
    # WeChat official account
    wechat_token: str | None = _spec("MINYI_WECHAT_TOKEN")
    wechat_app_id: str | None = _spec("MINYI_WECHAT_APP_ID")
    wechat_app_secret: str | None = _spec("MINYI_WECHAT_APP_SECRET")
    wechat_aes_key: str | None = _spec("MINYI_WECHAT_AES_KEY", _aes_key)
    wechat_api_base: str = _spec(
        "MINYI_WECHAT_API_BASE", _url("http", "https"), "https://api.weixin.qq.com"
    )
    wechat_reply_budget: float = _spec("MINYI_WECHAT_REPLY_BUDGET", _number(float, 0.5, 4.8), 4.0)
    wechat_template_id: str | None = _spec("MINYI_WECHAT_TEMPLATE_ID")
    wechat_template_fields: tuple[tuple[str, str], ...] = _spec(
        "MINYI_WECHAT_TEMPLATE_FIELDS", _field_map, ()
    )
    wechat_menu: str | None = _spec("MINYI_WECHAT_MENU", _path)
    # Telegram
    telegram_token: str | None = _spec("MINYI_TELEGRAM_TOKEN", _telegram_token)
    telegram_secret: str | None = _spec("MINYI_TELEGRAM_SECRET", _telegram_secret)
    telegram_api_base: str = _spec(
        "MINYI_TELEGRAM_API_BASE", _url("http", "https"), "https://api.telegram.org"
    )
    # SMS (channels/sms/config.py says which provider needs what)
    sms_provider: str | None = _spec("MINYI_SMS_PROVIDER", _one_of(*SMS_PROVIDERS))
    sms_api_base: str | None = _spec("MINYI_SMS_API_BASE", _url("http", "https"))
    sms_webhook_secret: str | None = _spec("MINYI_SMS_WEBHOOK_SECRET")
    sms_webhook_allow: str | None = _spec("MINYI_SMS_WEBHOOK_ALLOW", _sms_allow_list)
    sms_access_key_id: str | None = _spec("MINYI_SMS_ACCESS_KEY_ID")
    sms_access_key_secret: str | None = _spec("MINYI_SMS_ACCESS_KEY_SECRET")
    sms_sign_name: str | None = _spec("MINYI_SMS_SIGN_NAME")
    sms_app_id: str | None = _spec("MINYI_SMS_APP_ID")
    sms_region: str | None = _spec("MINYI_SMS_REGION")
    sms_template_survey: str | None = _spec("MINYI_SMS_TEMPLATE_SURVEY", _sms_template("survey"))
    sms_template_clarify: str | None = _spec("MINYI_SMS_TEMPLATE_CLARIFY", _sms_template("clarify"))
    sms_template_notice: str | None = _spec("MINYI_SMS_TEMPLATE_NOTICE", _sms_template("notice"))
    sms_account_sid: str | None = _spec("MINYI_SMS_ACCOUNT_SID")
    sms_auth_token: str | None = _spec("MINYI_SMS_AUTH_TOKEN")
    sms_from: str | None = _spec("MINYI_SMS_FROM")
    # Staff notifications
    staff_telegram_chat: str | None = _spec("MINYI_STAFF_TELEGRAM_CHAT")
    staff_wecom_key: str | None = _spec("MINYI_STAFF_WECOM_KEY")
    staff_wecom_api_base: str = _spec(
        "MINYI_STAFF_WECOM_API_BASE", _url("http", "https"), "https://qyapi.weixin.qq.com"
    )
    staff_webhook_url: str | None = _spec("MINYI_STAFF_WEBHOOK_URL", _url("http", "https"))
    staff_webhook_secret: str | None = _spec("MINYI_STAFF_WEBHOOK_SECRET")

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_token)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token)

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Settings from `env` (default: os.environ) over `minyi.toml` (MINYI_CONFIG or ./minyi.toml)."""
    env = os.environ if env is None else env
    file_values = _read_file(
        config_file or env.get("MINYI_CONFIG") or "minyi.toml",
        explicit=bool(config_file or env.get("MINYI_CONFIG")),
    )
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        name = spec.metadata["env"]
        raw = env.get(name)
        if raw is None:
            raw = file_values.get(name, file_values.get(spec.name))
        if raw is None:
            continue
        raw = str(raw).strip()
        if raw == "" and spec.default is None:
            continue  # an empty variable means "unset"
        values[spec.name] = spec.metadata["parse"](name, raw)
    settings = Settings(**values)
    _check_together(settings)
    return settings


def _read_file(path: str | Path, *, explicit: bool) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        if explicit:
            raise SettingsError(f"MINYI_CONFIG: file {str(file)!r} does not exist")
        return {}
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML ({exc})") from None
    return {str(k): v for k, v in data.items()}


def _check_together(settings: Settings) -> None:
    if settings.wechat_enabled and not settings.wechat_app_id:
        raise SettingsError("MINYI_WECHAT_APP_ID: required when MINYI_WECHAT_TOKEN is set")
    if settings.wechat_aes_key and not settings.wechat_token:
        raise SettingsError("MINYI_WECHAT_TOKEN: required when MINYI_WECHAT_AES_KEY is set")
    if settings.wechat_template_id and not settings.wechat_template_fields:
        raise SettingsError(
            "MINYI_WECHAT_TEMPLATE_FIELDS: required when MINYI_WECHAT_TEMPLATE_ID is set "
            "(e.g. code=character_string1,status=phrase2,time=time3,note=thing4)"
        )
    if settings.wechat_template_fields and not settings.wechat_template_id:
        raise SettingsError(
            "MINYI_WECHAT_TEMPLATE_ID: required when MINYI_WECHAT_TEMPLATE_FIELDS is set"
        )
    if settings.telegram_enabled and not settings.telegram_secret:
        raise SettingsError(
            "MINYI_TELEGRAM_SECRET: required when MINYI_TELEGRAM_TOKEN is set (the webhook secret token)"
        )
    check_sms(settings)
    if settings.staff_telegram_chat and not settings.telegram_token:
        raise SettingsError(
            "MINYI_TELEGRAM_TOKEN: required when MINYI_STAFF_TELEGRAM_CHAT is set (the bot posts the alerts)"
        )
    if settings.staff_webhook_url and not settings.staff_webhook_secret:
        raise SettingsError(
            "MINYI_STAFF_WEBHOOK_SECRET: required when MINYI_STAFF_WEBHOOK_URL is set (alerts are signed)"
        )
    if not settings.is_embedded_database and not settings.pii_key:
        raise SettingsError("MINYI_PII_KEY: required with PostgreSQL (32 random bytes, base64)")


def sms_config(settings: Settings) -> SmsConfig | None:
    """The SMS channel's settings, or None when SMS is off (MINYI_SMS_PROVIDER unset)."""
    if not settings.sms_provider:
        return None
    templates = {
        name: parse_template(variable, value, name)
        for name, variable in TEMPLATE_SETTINGS.items()
        if (value := getattr(settings, f"sms_template_{name}"))
    }
    allow = settings.sms_webhook_allow
    return SmsConfig(
        provider=settings.sms_provider,
        api_base=settings.sms_api_base or "",
        access_key_id=settings.sms_access_key_id or "",
        access_key_secret=settings.sms_access_key_secret or "",
        sign_name=settings.sms_sign_name or "",
        app_id=settings.sms_app_id or "",
        region=settings.sms_region or "",
        templates=templates,
        account_sid=settings.sms_account_sid or "",
        auth_token=settings.sms_auth_token or "",
        sender=settings.sms_from or "",
        webhook_secret=settings.sms_webhook_secret or "",
        allow=parse_allow_list("MINYI_SMS_WEBHOOK_ALLOW", allow) if allow else (),
        public_url=settings.public_url or "",
    )


def check_sms(settings: Settings) -> None:
    """Refuse SMS settings that cannot work, or would leave webhooks unauthenticated."""
    try:
        config = sms_config(settings)
        if config is not None:
            config.check()
    except SmsConfigError as exc:
        raise SettingsError(str(exc)) from None
