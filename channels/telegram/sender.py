"""Bot API sends within Telegram's flood limits: paced, retried on 429, errors made typed.

Every message Minyi sends on Telegram goes through one `TelegramSender` per bot: replies to
citizens, the notifier's case updates and (later) the staff group's alerts, so they share one
schedule. Failures come out as the channels' own errors: `RecipientUnreachable` when retrying
cannot help (the person blocked the bot, the chat is gone), `DeliveryFailed` otherwise, with
`retry_after` when Telegram said when to come back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from ..base import DeliveryFailed, RecipientUnreachable
from .limits import FloodLimiter
from .request import FloodWait

log = logging.getLogger(__name__)

T = TypeVar("T")

# Telegram's words for a chat that will never take a message from us again.
_GONE = ("chat not found", "user is deactivated", "bot was blocked", "bot was kicked")


class TelegramSender:
    """Sends to a chat when the flood limits allow, and again after a 429's `retry_after`.

    `clock` and `sleep` are attributes so tests can run it on a virtual clock.
    """

    def __init__(
        self,
        bot: Bot,
        limiter: FloodLimiter | None = None,
        *,
        attempts: int = 3,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.limiter = limiter or FloodLimiter()
        self.attempts = attempts
        # A longer wait is not done inline: the caller gets DeliveryFailed(retry_after=…) and
        # decides (the webhook answers 5xx so Telegram re-delivers; the notifier reschedules).
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    async def send_message(
        self, chat_id: int | str, text: str, keyboard: InlineKeyboardMarkup | None = None
    ) -> Message:
        """One plain-text message (no parse mode: citizens' words are never read as markup)."""
        return await self.call(
            chat_id, lambda: self.bot.send_message(chat_id, text, reply_markup=keyboard)
        )

    async def call(self, chat_id: int | str, request: Callable[[], Awaitable[T]]) -> T:
        """Any Bot API call that posts into `chat_id` (send, edit, forward), paced and retried."""
        for attempt in range(1, self.attempts + 1):
            delay = self.limiter.reserve(chat_id, self.clock())
            if delay > self.max_wait:  # the chat is still held by an earlier, long 429
                raise DeliveryFailed("telegram: flood control", retry_after=delay)
            if delay > 0:
                await self.sleep(delay)
            try:
                return await request()
            except FloodWait as exc:
                self.limiter.pause(chat_id, self.clock(), exc.retry_after)
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise DeliveryFailed(
                        f"telegram: {exc.message}", retry_after=exc.retry_after
                    ) from exc
                log.warning(
                    "telegram flood control on chat %s, retrying in %gs", chat_id, exc.retry_after
                )
            except TelegramError as exc:
                raise delivery_error(exc) from exc
        raise AssertionError("unreachable")


def delivery_error(exc: TelegramError) -> DeliveryFailed:
    """PTB's error as the channels' own: unreachable when retrying cannot help."""
    reason = f"telegram: {exc.message}"
    if isinstance(exc, Forbidden):
        # Blocked, kicked, deactivated (403): so until the person unblocks the bot.
        return RecipientUnreachable(reason, lasting=True)
    if isinstance(exc, BadRequest) and any(word in exc.message.lower() for word in _GONE):
        return RecipientUnreachable(reason, lasting=True)
    if isinstance(exc, ChatMigrated):
        # A group became a supergroup; the caller must use the new id from now on.
        return DeliveryFailed(f"{reason} (new chat id {exc.new_chat_id})")
    return DeliveryFailed(reason)
