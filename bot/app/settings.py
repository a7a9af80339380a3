"""Settings from the environment and an optional `minyi.toml`; a wrong value stops start-up.

Each setting is one `MINYI_*` variable (CONTRACTS.md). The core's are declared here; each
channel package declares and checks its own (channels/registry.py lists them), and a channel's
configuration is built once here so that start-up fails on the first wrong value. The TOML file
may use the same names or their short lowercase form (`database_url`); the environment wins.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from channels.client import parse_networks
from channels.registry import PLUGINS
from channels.settings import (
    SettingError,
    Spec,
    existing_file,
    hours_span,
    number,
    one_of,
    read,
    secret,
    text,
    url,
)
from conversation.cases.kinds import KINDS
from storage import redis_connect, retention

# The one error type of settings, whoever declares the setting.
SettingsError = SettingError


def _database_url(name: str, value: str) -> str:
    try:
        parsed = make_url(value)
    except ArgumentError:
        raise SettingsError(
            f"{name}: {value!r} is not a database URL (e.g. postgresql+asyncpg://user@host/db)"
        ) from None
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"{name}: use sqlite+aiosqlite:///path or postgresql+asyncpg://…, not {parsed.drivername}"
        )
    return value


def _redis_url(name: str, value: str) -> str:
    try:
        redis_connect.parse(value)
    except ValueError as exc:
        raise SettingsError(
            f"{name}: {value!r}: {exc} (e.g. redis://host:6379/0, "
            "redis+cluster://node1:6379,node2:6379, redis+sentinel://s1:26379,s2:26379/mymaster)"
        ) from None
    return value.rstrip("/") if redis_connect.parse(value) is None else value


def _rate(name: str, value: str) -> tuple[int, int]:
    """`30/min` → (30, 60): at most that many in each window of that many seconds."""
    count, _, per = value.replace(" ", "").partition("/")
    seconds = {
        "s": 1,
        "sec": 1,
        "min": 60,
        "m": 60,
        "h": 3600,
        "hour": 3600,
        "d": 86400,
        "day": 86400,
    }.get(per)
    if not count.isdigit() or int(count) < 1 or seconds is None:
        raise SettingsError(f"{name}: {value!r} is not a rate; write e.g. 30/min, 600/h or 5/s")
    return int(count), seconds


def _rates(name: str, value: str) -> tuple[tuple[int, int], ...]:
    """`10/h, 30/d` → ((10, 3600), (30, 86400)): every one of them holds."""
    rates = tuple(_rate(name, part) for part in value.split(",") if part.strip())
    if not rates:
        raise SettingsError(f"{name}: give at least one rate, e.g. 10/h, 30/d")
    return rates


def _retention(name: str, value: str) -> tuple[tuple[str, int], ...]:
    try:
        years = retention.parse_years(value)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    unknown = sorted(set(years) - set(KINDS))
    if unknown:
        raise SettingsError(
            f"{name}: {', '.join(unknown)} is not a kind of case; use {', '.join(KINDS)}"
        )
    return tuple(years.items())


def _scale(name: str, value: str) -> int:
    if value not in ("3", "5"):
        raise SettingsError(
            f"{name}: {value!r} is not a satisfaction scale; use 3 (满意/基本满意/不满意) or 5 (好差评)"
        )
    return int(value)


def _timezone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
    return value


OPEN311_KEY_MIN = 16


def _open311_keys(name: str, value: str) -> tuple[str, ...]:
    """One key per partner platform, comma-separated, so that one can be revoked alone."""
    keys = tuple(key.strip() for key in value.split(",") if key.strip())
    for position, key in enumerate(keys, 1):
        if len(key) < OPEN311_KEY_MIN or not key.isascii() or not key.isprintable():
            # The key itself is never repeated: the message may end up in a log.
            raise SettingsError(
                f"{name}: key {position} must be at least {OPEN311_KEY_MIN} printable ASCII "
                f'characters (it has {len(key)}); e.g. python -c "import secrets; '
                f'print(secrets.token_urlsafe(24))"'
            )
    if len(set(keys)) != len(keys):
        raise SettingsError(f"{name}: the same key is given twice")
    return keys


def _spec(env: str, parse: Any = text, default: Any = None) -> Any:
    return field(default=default, metadata={"spec": Spec(env, parse, default)})


# Every channel's settings by short name (`wechat_token`), for `replace` and the TOML file.
CHANNEL_SPECS: dict[str, Spec] = {spec.field: spec for p in PLUGINS for spec in p.settings}


@dataclass(frozen=True)
class Settings:
    database_url: str = _spec("MINYI_DATABASE_URL", _database_url, "sqlite+aiosqlite:///./minyi.db")
    redis_url: str | None = _spec("MINYI_REDIS_URL", _redis_url)
    redis_prefix: str = _spec("MINYI_REDIS_PREFIX", default="minyi:")
    stream: str = _spec("MINYI_STREAM", default="minyi:events")
    api_token: str | None = _spec("MINYI_API_TOKEN", secret(32))
    open311_keys: tuple[str, ...] = _spec("MINYI_OPEN311_KEYS", _open311_keys, ())
    pii_key: str | None = _spec("MINYI_PII_KEY")
    # The key being replaced, while `minyi keys rotate` re-encrypts (README, "Key rotation").
    pii_key_old: str | None = _spec("MINYI_PII_KEY_OLD")
    office_config: str | None = _spec("MINYI_OFFICE_CONFIG", existing_file)
    # Citizens' photos (storage/files.py); unset = beside the SQLite file, else ./minyi-files.
    files_dir: str | None = _spec("MINYI_FILES_DIR")
    # An S3-compatible bucket instead (MinIO, OSS, COS): set the bucket and its keys.
    files_s3_bucket: str | None = _spec("MINYI_FILES_S3_BUCKET")
    files_s3_endpoint: str | None = _spec("MINYI_FILES_S3_ENDPOINT", url("http", "https"))
    files_s3_region: str = _spec("MINYI_FILES_S3_REGION", default="us-east-1")
    files_s3_access_key: str | None = _spec("MINYI_FILES_S3_ACCESS_KEY")
    files_s3_secret_key: str | None = _spec("MINYI_FILES_S3_SECRET_KEY")
    files_s3_prefix: str = _spec("MINYI_FILES_S3_PREFIX", default="")
    # Uploads no case took are swept this long after they came (and their conversation ended).
    photo_orphan_hours: int = _spec("MINYI_PHOTO_ORPHAN_HOURS", number(int, 1, 24 * 365), 48)
    timezone: str = _spec("MINYI_TIMEZONE", _timezone, "Asia/Shanghai")
    session_hours: int = _spec("MINYI_SESSION_HOURS", number(int, 1, 24 * 30), 24)
    # How long the replies to a message are kept to answer its re-delivery the same.
    redelivery_seconds: int = _spec("MINYI_REDELIVERY_SECONDS", number(int, 1, 24 * 3600), 900)
    survey_scale: int = _spec("MINYI_SURVEY_SCALE", _scale, 3)
    survey_days: int = _spec("MINYI_SURVEY_DAYS", number(int, 1, 90), 7)
    survey_quiet_hours: str = _spec("MINYI_SURVEY_QUIET_HOURS", hours_span, "21:00-08:00")
    public_url: str | None = _spec("MINYI_PUBLIC_URL", url("http", "https"))
    # Reverse proxies whose X-Forwarded-For/-Proto/-Host are believed (channels/client.py).
    trusted_proxies: tuple[Any, ...] = _spec("MINYI_TRUSTED_PROXIES", parse_networks, ())
    # Rate limits on citizen-facing routes: "30/min", "600/h", "5/s" (storage/ratelimit.py).
    rate_sender: tuple[int, int] = _spec("MINYI_RATE_SENDER", _rate, (30, 60))
    rate_address: tuple[int, int] = _spec("MINYI_RATE_ADDRESS", _rate, (120, 60))
    # SMS answers to one mobile's own texts (docs/sms.md, "Following by SMS").
    rate_sms_answers: tuple[tuple[int, int], ...] = _spec(
        "MINYI_RATE_SMS_ANSWERS", _rates, ((10, 3600), (30, 86400))
    )
    log_level: str = _spec("MINYI_LOG_LEVEL", one_of("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
    log_format: str = _spec("MINYI_LOG_FORMAT", one_of("text", "json"), "text")
    # Years a closed case is kept before `minyi archive` exports and erases it, per kind.
    retention_years: tuple[tuple[str, int], ...] = _spec("MINYI_RETENTION_YEARS", _retention, ())
    # The channels' settings, parsed, by short name (defaults filled in); see `channel`.
    channel_values: Mapping[str, Any] = field(
        default_factory=lambda: read(tuple(CHANNEL_SPECS.values()), {})
    )

    def __post_init__(self) -> None:
        values = {
            **self.channel_values,
            "public_url": self.public_url,
            # Whether small shared values (claims, tokens) live in Redis or in the database.
            "shared_in_redis": bool(self.redis_url),
        }
        configs = {plugin.name: plugin.configure(values) for plugin in PLUGINS}
        object.__setattr__(self, "_configs", configs)

    def channel(self, name: str) -> Any:
        """The named plugin's configuration (channels/registry.py), or None when it is off."""
        return self._configs.get(name)  # type: ignore[attr-defined]

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, core or channel (by short name, parsed values)."""
        channel = {k: v for k, v in changes.items() if k in CHANNEL_SPECS}
        core = {k: v for k, v in changes.items() if k not in CHANNEL_SPECS}
        if channel:
            core["channel_values"] = {**self.channel_values, **channel}
        return replace(self, **core)


CORE_SPECS: tuple[Spec, ...] = tuple(
    f.metadata["spec"] for f in fields(Settings) if "spec" in f.metadata
)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Settings from `env` (default: os.environ) over `minyi.toml` (MINYI_CONFIG or ./minyi.toml)."""
    env = os.environ if env is None else env
    file_values = _read_file(
        config_file or env.get("MINYI_CONFIG") or "minyi.toml",
        explicit=bool(config_file or env.get("MINYI_CONFIG")),
    )
    raw: dict[str, str] = {}
    for spec in (*CORE_SPECS, *CHANNEL_SPECS.values()):
        given = env.get(spec.env)
        if given is None:
            given = file_values.get(spec.env, file_values.get(spec.field))
        if given is not None:
            raw[spec.env] = str(given)
    core = {k: v for k, v in read(CORE_SPECS, raw).items() if v is not None}
    settings = Settings(**core, channel_values=read(tuple(CHANNEL_SPECS.values()), raw))
    if settings.files_s3_bucket and not (
        settings.files_s3_access_key and settings.files_s3_secret_key
    ):
        raise SettingsError(
            "MINYI_FILES_S3_BUCKET: needs MINYI_FILES_S3_ACCESS_KEY and MINYI_FILES_S3_SECRET_KEY"
        )
    if not settings.is_embedded_database and not settings.pii_key:
        raise SettingsError("MINYI_PII_KEY: required with PostgreSQL (32 random bytes, base64)")
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
