"""The staff duty group on Telegram: alerts with 认领 / 查看 buttons, and what members do.

A member claims an alert (button), shows its case (button), talks to the citizen by replying to
the alert or to a relayed citizen message (Telegram reply-to: in a group with privacy mode on,
the bot sees only replies to its own messages and commands), and ends with /done. Only updates
from the configured group, by its members, are read; everything else is ignored and logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update, User

from ..base import Services
from ..staff import ActionKind, Say, StaffAction, StaffAlert, StaffMember, ThreadView

_BUTTON = re.compile(r"(claim|show):(\d{1,18})")
_DONE = re.compile(r"/done(?:@[A-Za-z0-9_]+)?\s*", re.IGNORECASE)
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})

log = logging.getLogger(__name__)


# Posts an alert (with its thread's buttons when it has one) → the message's id.
GroupPost = Callable[[str, int | None], Awaitable[str]]


def alert_keyboard(thread: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("认领", callback_data=f"claim:{thread}"),
                InlineKeyboardButton("查看", callback_data=f"show:{thread}"),
            ]
        ]
    )


def in_staff_chat(update: Update, staff_chat: str) -> bool:
    """Whether the update happened in the duty group (a message there, or a button there)."""
    chat = None
    if update.callback_query is not None and update.callback_query.message is not None:
        chat = update.callback_query.message.chat
    elif update.effective_message is not None:
        chat = update.effective_message.chat
    return chat is not None and str(chat.id) == staff_chat


def read_staff_update(update: Update) -> StaffAction | None:
    """The member's action, or None for what is not one (chatter, service messages, bots)."""
    query = update.callback_query
    if query is not None:
        match = _BUTTON.fullmatch(query.data or "")
        if match is None or query.from_user.is_bot:
            return None
        return StaffAction(
            kind="claim" if match.group(1) == "claim" else "show",
            member=_member(query.from_user),
            update_id=update.update_id,
            thread=int(match.group(2)),
            callback_id=query.id,
        )
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    reply_to = str(message.reply_to_message.message_id) if message.reply_to_message else ""
    text = (message.text or message.caption or "").strip()
    if _DONE.fullmatch(text):
        kind: ActionKind = "done"
    elif reply_to and text:
        kind = "say"
    else:
        return None  # talk among staff, not for the citizen
    return StaffAction(
        kind=kind,
        member=_member(message.from_user),
        update_id=update.update_id,
        reply_to=reply_to,
        text=text if kind == "say" else "",
        message_id=str(message.message_id),
    )


def _member(user: User) -> StaffMember:
    name = " ".join(part for part in (user.first_name, user.last_name) if part).strip()
    return StaffMember(str(user.id), name or user.username or str(user.id))


class GroupAlerts:
    """The duty group as a staff-alert target: one message per alert, with 认领 / 查看 buttons
    when staff can talk to the citizen through it, and the citizen's words under it."""

    name = "telegram"
    threads = True

    def __init__(self, post: GroupPost, say: Say) -> None:
        self.post, self.say = post, say

    async def start(self, services: Services) -> None:
        return None  # the channel it posts through is started as a channel

    async def send(self, alerts: Sequence[StaffAlert]) -> dict[str, str]:
        posted = {}
        for alert in alerts:
            posted[alert.key] = await self.post("\n".join(alert.lines()), alert.thread)
        return posted

    async def post_in_thread(self, thread: ThreadView, text: str) -> str:
        return await self.say(text, thread.alert_message_id)
