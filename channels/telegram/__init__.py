"""Telegram: the citizen channel (webhook or polling) and Bot API sending within flood limits.

updates.py  an update from a private chat → Inbound (or nothing to do)
render.py   Reply → messages with an inline keyboard, split under 4096 characters
sender.py   TelegramSender: paced per chat and per bot, retried on 429, typed errors
limits.py   the flood-limit schedule the sender waits on
request.py  PTB's Application and transport over the app's aiohttp session
webhook.py  POST /telegram (secret first), setWebhook / deleteWebhook
polling.py  getUpdates for trying the bot without a public address
channel.py  TelegramChannel: wires them, and `reach` for the notifier
staff.py    the duty group: alerts with buttons, members' actions
settings.py MINYI_TELEGRAM_* and MINYI_STAFF_TELEGRAM_CHAT
"""

from ..base import Built, Parts, Plugin
from .channel import TelegramChannel
from .limits import FloodLimiter, Rate
from .polling import PollingRefused
from .render import Outgoing, render
from .request import FloodWait, build_application
from .sender import TelegramSender
from .settings import SETTINGS, TelegramConfig, configure
from .webhook import delete_webhook, set_webhook


def _build(config: TelegramConfig, parts: Parts) -> Built:
    channel = TelegramChannel(
        parts.handle,
        token=config.token,
        secret=config.secret,
        api_base=config.api_base,
        staff_chat=config.staff_chat,
        on_staff=parts.staff_actions if config.staff_chat else None,
    )
    return Built(channel=channel, staff=channel.group_alerts() if config.staff_chat else None)


PLUGIN = Plugin("telegram", SETTINGS, configure, _build)

__all__ = [
    "PLUGIN",
    "FloodLimiter",
    "FloodWait",
    "Outgoing",
    "PollingRefused",
    "Rate",
    "TelegramChannel",
    "TelegramConfig",
    "TelegramSender",
    "build_application",
    "delete_webhook",
    "render",
    "set_webhook",
]
