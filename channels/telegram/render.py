"""Replies as Telegram messages: choices become an inline keyboard, long texts are split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from conversation.messages import Reply

MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # counted by Telegram in UTF-16 code units
MAX_CALLBACK_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # bytes


@dataclass(frozen=True)
class Outgoing:
    """One sendMessage: plain text, and the keyboard when the reply offers choices."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


def render(replies: Sequence[Reply]) -> list[Outgoing]:
    messages: list[Outgoing] = []
    for reply in replies:
        messages.extend(render_one(reply))
    return messages


def render_one(reply: Reply) -> list[Outgoing]:
    keyboard = _keyboard(reply)
    # Without a keyboard (none offered, or a key too long for callback_data) the choices are
    # numbered lines, which the engine understands when typed.
    text = reply.text if keyboard is not None and reply.text.strip() else reply.as_plain_text()
    if not text.strip():
        return []
    chunks = split_text(text)
    return [
        Outgoing(chunk, keyboard if i == len(chunks) - 1 else None)
        for i, chunk in enumerate(chunks)
    ]


def _keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.choices:
        return None
    if any(not 0 < len(c.key.encode()) <= MAX_CALLBACK_DATA for c in reply.choices):
        return None
    # One button per row: big targets, and long category names stay readable.
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(f"{c.key} {c.label}".strip(), callback_data=c.key)]
            for c in reply.choices
        ]
    )


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` UTF-16 units, cut at a line break where one is near.

    Telegram counts a message's length in UTF-16 code units, so an emoji uses two.
    """
    chunks: list[str] = []
    rest = text
    while _units(rest) > limit:
        cut = _fitting(rest, limit)
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline + 1
        chunks.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    chunks.append(rest)
    return [chunk for chunk in chunks if chunk.strip()]  # Telegram refuses an empty text


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units (an emoji takes two)."""
    used = 0
    for i, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return i
    return len(text)
