"""The channel registry: every citizen channel and how settings turn it on.

Adding a channel is one module in channels/ and one line in CHANNELS.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.app.settings import Settings, SettingsError
from bot.app.sms_setup import sms_channel
from channels.base import Channel, Handler
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from channels.wechat import WeChatChannel, WeChatConfig
from conversation.catalog import Catalog
from conversation.office import load_office

Builder = Callable[[Settings, Handler], Channel | None]


def _webchat(settings: Settings, handle: Handler) -> Channel | None:
    return WebChatChannel(handle)


def _wechat(settings: Settings, handle: Handler) -> Channel | None:
    if not settings.wechat_enabled or not settings.wechat_token or not settings.wechat_app_id:
        return None
    config = WeChatConfig(
        token=settings.wechat_token,
        app_id=settings.wechat_app_id,
        apology=_apology(settings),
        app_secret=settings.wechat_app_secret,
        aes_key=settings.wechat_aes_key,
        api_base=settings.wechat_api_base,
        reply_budget=settings.wechat_reply_budget,
        template_id=settings.wechat_template_id,
        template_fields=dict(settings.wechat_template_fields),
    )
    return WeChatChannel(config, handle)


def _apology(settings: Settings) -> str:
    """What a citizen reads when a turn fails: the office's wording when it has its own."""
    try:
        catalog = load_office(settings.office_config).catalog
    except ValueError:
        catalog = Catalog()  # the runtime reports the office file's error at start-up
    return catalog.text("zh", "error.internal")


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


CHANNELS: tuple[Builder, ...] = (_webchat, _wechat, _telegram, sms_channel)


def build_channels(settings: Settings, handle: Handler) -> dict[str, Channel]:
    """Every enabled channel by name. Construction does no I/O; `start` connects them."""
    built = (builder(settings, handle) for builder in CHANNELS)
    return {channel.name: channel for channel in built if channel is not None}
