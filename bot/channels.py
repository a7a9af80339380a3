"""The channel registry: every citizen channel and how settings turn it on.

Adding a channel is one module in channels/ and one line in CHANNELS.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.base import Channel, Handler
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel

from .settings import Settings, SettingsError
from .sms import sms_channel

Builder = Callable[[Settings, Handler], Channel | None]


def _webchat(settings: Settings, handle: Handler) -> Channel | None:
    return WebChatChannel(handle)


def _telegram(settings: Settings, handle: Handler) -> Channel | None:
    if not settings.telegram_enabled:
        return None
    if not settings.telegram_secret:
        raise SettingsError("MINYI_TELEGRAM_SECRET: required when MINYI_TELEGRAM_TOKEN is set")
    return TelegramChannel(
        handle,
        token=settings.telegram_token or "",
        secret=settings.telegram_secret,
        api_base=settings.telegram_api_base,
        staff_chat=settings.staff_telegram_chat or "",
    )


CHANNELS: tuple[Builder, ...] = (_webchat, _telegram, sms_channel)


def build_channels(settings: Settings, handle: Handler) -> dict[str, Channel]:
    """Every enabled channel by name. Construction does no I/O; `start` connects them."""
    built = (builder(settings, handle) for builder in CHANNELS)
    return {channel.name: channel for channel in built if channel is not None}
