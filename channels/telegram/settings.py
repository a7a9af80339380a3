"""The bot's `MINYI_TELEGRAM_*` settings and the duty group, read and checked together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..settings import SettingError, Spec, pattern, require, text, url

DEFAULT_API_BASE = "https://api.telegram.org"

SETTINGS = (
    # The token becomes part of every Bot API path, so anything but BotFather's shape is refused.
    Spec(
        "MINYI_TELEGRAM_TOKEN",
        pattern(
            r"\d+:[A-Za-z0-9_-]+",
            "not a bot token (BotFather gives one like 123456789:AAH…, digits, a colon, "
            "then letters, digits, '-' or '_')",
        ),
    ),
    # Telegram's own rule for setWebhook's secret_token; it refuses anything else.
    Spec(
        "MINYI_TELEGRAM_SECRET",
        # Telegram allows 1-256; fewer than 16 could be guessed.
        pattern(
            r"[A-Za-z0-9_-]{16,256}",
            "must be 16-256 characters of A-Z, a-z, 0-9, '_' or '-' (Telegram's rule for a "
            "webhook secret token, and at least 16 so that it cannot be guessed)",
        ),
    ),
    Spec("MINYI_TELEGRAM_API_BASE", url("http", "https"), DEFAULT_API_BASE),
    Spec("MINYI_STAFF_TELEGRAM_CHAT", text),
)


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    secret: str
    api_base: str = DEFAULT_API_BASE
    staff_chat: str = ""  # the duty group's chat id; empty = no duty group


def configure(values: Mapping[str, Any]) -> TelegramConfig | None:
    """The bot's configuration, or None when Telegram is off (no token)."""
    if not values["telegram_token"]:
        if values["staff_telegram_chat"]:
            raise SettingError(
                "MINYI_TELEGRAM_TOKEN: required when MINYI_STAFF_TELEGRAM_CHAT is set "
                "(the bot posts the alerts)"
            )
        return None
    secret = require(
        values,
        "telegram_secret",
        "MINYI_TELEGRAM_SECRET",
        "when MINYI_TELEGRAM_TOKEN is set (the webhook secret token)",
    )
    return TelegramConfig(
        values["telegram_token"],
        secret,
        values["telegram_api_base"],
        values["staff_telegram_chat"] or "",
    )
