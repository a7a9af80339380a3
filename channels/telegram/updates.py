"""A Telegram update from a citizen's private chat as one `Inbound`, or nothing to do.

The sender is the chat id and the message id is the `update_id`, so a re-delivered update is
recognised by the engine (Telegram numbers updates per bot; a duplicate has the same number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType

from conversation.messages import Inbound, Location, Media

CHANNEL = "telegram"
# What the bot asks Telegram for (setWebhook, getUpdates); everything else is never sent to us.
ALLOWED_UPDATES = ("message", "callback_query")
# `/start town-7` from a link t.me/<bot>?start=town-7, Telegram's rule for the payload.
_DEEP_LINK = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COMMAND = re.compile(r"/([A-Za-z0-9_]+)(?:@[A-Za-z0-9_]+)?(?:\s+(.*))?", re.DOTALL)
# Things a person sends that the engine cannot read: they get a line saying what to send.
# Service messages (pins, timer changes, …) are not listed and pass silently.
_UNREADABLE = (
    "sticker",
    "animation",
    "video",
    "video_note",
    "audio",
    "document",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "paid_media",
)


@dataclass(frozen=True)
class Received:
    """What an update asks of us: a turn for the engine and/or a pressed button to answer."""

    inbound: Inbound | None
    callback_id: str = ""
    # The message whose keyboard was pressed, to refuse buttons of questions already gone by.
    pressed_message_id: int | None = None


def read_update(update: Update) -> Received | None:
    """None for what the citizen channel leaves alone: edits, groups, service messages."""
    if update.callback_query is not None:
        return _pressed(update)
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE:
        return None
    if message.from_user is not None and message.from_user.is_bot:
        return None
    inbound = _inbound(update, message)
    return Received(inbound) if inbound is not None else None


def _pressed(update: Update) -> Received:
    query = update.callback_query
    assert query is not None
    message = query.message
    if message is None or message.chat.type != ChatType.PRIVATE or not query.data:
        return Received(None, callback_id=query.id)  # acknowledged, nothing else to do
    inbound = Inbound(
        channel=CHANNEL,
        sender=str(message.chat.id),
        text=query.data,  # the choice key (render.py puts nothing else there)
        message_id=str(update.update_id),
        language=query.from_user.language_code or "",
        raw=update,
    )
    return Received(inbound, callback_id=query.id, pressed_message_id=message.message_id)


def _inbound(update: Update, message: Message) -> Inbound | None:
    user = message.from_user
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "sender": str(message.chat.id),
        "message_id": str(update.update_id),
        "language": (user.language_code if user else None) or "",
        "raw": update,
    }
    caption = message.caption or ""
    if message.text is not None:
        return _text(message.text, common)
    if message.photo:
        # Telegram sends several sizes of one photo; the largest is the evidence.
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Inbound(
            kind="image", text=caption, media=(Media("image", largest.file_id),), **common
        )
    document = message.document
    if (
        document is not None
        and message.animation is None
        and (document.mime_type or "").startswith("image/")
    ):
        # A photo sent "as a file" (uncompressed) is still a photo.
        return Inbound(
            kind="image", text=caption, media=(Media("image", document.file_id),), **common
        )
    if message.voice is not None:
        return Inbound(
            kind="voice", text=caption, media=(Media("voice", message.voice.file_id),), **common
        )
    if message.venue is not None:
        venue = message.venue
        label = f"{venue.title} {venue.address}".strip()
        where = Location(venue.location.latitude, venue.location.longitude, label[:200])
        return Inbound(kind="location", location=where, text=where.label, **common)
    if message.location is not None:
        where = Location(message.location.latitude, message.location.longitude)
        return Inbound(kind="location", location=where, **common)
    for kind in _UNREADABLE:
        if getattr(message, kind, None):
            return Inbound(kind="event", event="unsupported", event_key=kind, **common)
    return None


def _text(text: str, common: dict[str, Any]) -> Inbound:
    command = _COMMAND.fullmatch(text.strip())
    if command is None:
        return Inbound(kind="text", text=text, **common)
    name, argument = command.group(1).lower(), (command.group(2) or "").strip()
    if name == "start" and _DEEP_LINK.fullmatch(argument):
        # Like a WeChat QR scene: a link printed at a town office tags what is filed after it.
        return Inbound(kind="event", event="subscribe", event_key=argument, **common)
    # `/menu@MinyiBot` is `/menu`: the engine knows /start, /menu and /cancel as words.
    return Inbound(kind="text", text=f"/{name} {argument}".strip(), **common)
