"""Telegram: the citizen channel (webhook or polling) and Bot API sending within flood limits.

updates.py  an update from a private chat → Inbound (or nothing to do)
render.py   Reply → messages with an inline keyboard, split under 4096 characters
sender.py   TelegramSender: paced per chat and per bot, retried on 429, typed errors
limits.py   the flood-limit schedule the sender waits on
request.py  PTB's Application and transport over the app's aiohttp session
webhook.py  POST /telegram (secret first), setWebhook / deleteWebhook
polling.py  getUpdates for trying the bot without a public address
channel.py  TelegramChannel: wires them, and `send` for the notifier
"""

from .channel import TelegramChannel
from .limits import FloodLimiter, Rate
from .polling import PollingRefused
from .render import Outgoing, render
from .request import FloodWait, build_application
from .sender import TelegramSender
from .webhook import delete_webhook, set_webhook

__all__ = [
    "FloodLimiter",
    "FloodWait",
    "Outgoing",
    "PollingRefused",
    "Rate",
    "TelegramChannel",
    "TelegramSender",
    "build_application",
    "delete_webhook",
    "render",
    "set_webhook",
]
