"""The Telegram citizen channel: updates in (webhook or polling), replies and notices out."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from telegram import Bot, ReplyParameters, Update
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application

from conversation.messages import Inbound, Reply

from ..base import (
    DeliveryFailed,
    Handler,
    MediaGone,
    Notice,
    Recipient,
    RecipientUnreachable,
    Route,
    Services,
    SharedCache,
    Throttled,
)
from ..staff import StaffHandler
from .polling import poll
from .render import Outgoing, render
from .request import build_application, redact
from .sender import TelegramSender
from .staff import (
    MEMBER_STATUSES,
    GroupAlerts,
    alert_keyboard,
    in_staff_chat,
    read_staff_update,
)
from .updates import Received, read_update
from .webhook import PATH, BadUpdate, Webhook

log = logging.getLogger(__name__)

# One chat's updates are handled one at a time, across processes, so replies keep their order.
CHAT_LOCK_SECONDS = 90.0
# How long a handled update is remembered: Telegram keeps an undelivered one for 24 hours.
UPDATE_MEMORY = 48 * 3600.0
# Which message carries the keyboard of the question now asked; older buttons are refused.
KEYBOARD_MEMORY = 7 * 24 * 3600.0
# Whether someone is a member of the duty group is asked again after this long.
MEMBERSHIP_MEMORY = 600.0
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")


class TelegramChannel:
    name = "telegram"
    title = "Telegram"

    def __init__(
        self,
        handle: Handler,
        *,
        token: str,
        secret: str,
        api_base: str,
        staff_chat: str = "",
        on_staff: StaffHandler | None = None,
    ) -> None:
        self.handle = handle
        self.staff_chat = staff_chat
        # What members of the duty group do (bot/backoffice/staff_threads.py).
        self.on_staff = on_staff
        self._token = token
        self._api_base = api_base
        self._webhook = Webhook(secret, self.process_json, self._rejected)
        self._services: Services | None = None
        self.application: Application | None = None
        self.sender: TelegramSender | None = None

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(PATH, self._webhook.handle)]

    async def start(self, services: Services) -> None:
        self._services = services
        self.application = build_application(self._token, self._api_base, services.http)
        self.sender = TelegramSender(self.application.bot)
        try:
            await self.application.initialize()  # getMe: checks the token
        except InvalidToken:
            log.error(
                "MINYI_TELEGRAM_TOKEN was refused by Telegram: nothing can be sent until it is fixed"
            )
        except TelegramError as exc:
            # Telegram unreachable (often so from mainland China) must not stop the other
            # channels; sending is tried again with each message.
            log.warning("Telegram is not reachable at start-up: %s", redact(str(exc)))

    async def close(self) -> None:
        if self.application is not None:
            await self.application.shutdown()

    @property
    def bot(self) -> Bot:
        if self.application is None:
            raise RuntimeError("the Telegram channel is not started")
        return self.application.bot

    async def fetch_media(self, ref: str, limit: int) -> bytes:
        """A photo the citizen sent (getFile, then the file), while Telegram keeps it."""
        try:
            found = await self.bot.get_file(ref)
            if found.file_size is not None and found.file_size > limit:
                raise MediaGone(f"getFile: {found.file_size} bytes, over {limit}")
            data = bytes(await found.download_as_bytearray())
        except BadRequest as exc:  # "invalid file_id", "file is too big"
            raise MediaGone(f"getFile: {redact(str(exc))}") from None
        except TelegramError as exc:
            raise DeliveryFailed(f"getFile: {redact(str(exc))}", retry_after=60) from None
        if len(data) > limit:
            raise MediaGone(f"getFile: over {limit} bytes")
        return data

    # -- out: the notifier's entry -------------------------------------------------------------

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        """A citizen who chats with the bot, unless they blocked it."""
        if recipient.channel != self.name or not recipient.chat_reachable:
            return []
        chat = recipient.address

        async def deliver(notice: Notice) -> str | None:
            return await self.send(chat, notice.replies)

        return [Route("telegram", self.name, conversational=True, deliver=deliver)]

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        """Tell a citizen something outside a turn (case updates, surveys); the id of the last
        Telegram message sent.

        Raises RecipientUnreachable when the person blocked the bot (fall back to SMS), and
        DeliveryFailed otherwise (`retry_after` set when Telegram asked us to wait).
        """
        if not _CHAT_ID.fullmatch(recipient):
            raise RecipientUnreachable(f"telegram: {recipient!r} is not a chat id")
        messages = render(replies)
        async with self._shared.lock(_chat_lock(recipient), CHAT_LOCK_SECONDS):
            sent = await self._deliver(recipient, messages)
            if sent.keyboard_at is not None:  # a question with buttons (a survey) is now current
                await self._shared.set(
                    _keyboard_key(recipient), str(sent.keyboard_at), KEYBOARD_MEMORY
                )
        return str(sent.last) if sent.last is not None else None

    # -- in: the webhook and the poller both end here ----------------------------------------------

    async def process_json(self, data: dict[str, Any]) -> None:
        """One update as Telegram posted it; BadUpdate when it is not one."""
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
            raise BadUpdate("update_id must be a whole number (this is not a Telegram update).")
        try:
            update = Update.de_json(data, self.bot)
            staff = bool(self.staff_chat) and in_staff_chat(update, self.staff_chat)
            received = None if staff else read_update(update)
        except KeyError as exc:
            raise BadUpdate(f"Not a Telegram update: the field {exc} is missing.") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadUpdate(f"Not a Telegram update: {exc}.") from None
        if staff:
            await self._staff_update(update)
        else:
            await self._act(received)

    async def process(self, update: Update) -> None:
        """One update as getUpdates returned it."""
        if self.staff_chat and in_staff_chat(update, self.staff_chat):
            await self._staff_update(update)
        else:
            await self._act(read_update(update))

    # -- the staff duty group ------------------------------------------------------------------

    async def _staff_update(self, update: Update) -> None:
        action = read_staff_update(update)
        if update.callback_query is not None:
            await self._acknowledge(update.callback_query.id)
        if action is None:
            return
        if not await self._shared.add(f"telegram:staff:{update.update_id}", "1", UPDATE_MEMORY):
            return  # a re-delivered update: acted on already
        if not await self.is_member(action.member.user_id):
            log.warning(
                "staff group: ignored %s from non-member %s", action.kind, action.member.user_id
            )
            self._rejected("telegram", "not_staff")
            return
        if self.on_staff is None:
            log.warning("staff group: %s ignored, no staff desk is bound", action.kind)
            return
        await self.on_staff(action, self._say_in_group)

    async def _say_in_group(self, text: str, reply_to: str) -> str:
        return await self.post_staff(text, reply_to=reply_to)

    def group_alerts(self) -> GroupAlerts:
        """The duty group as a staff-alert target."""

        async def post(text: str, thread: int | None) -> str:
            return await self.post_staff(text, thread=thread)

        return GroupAlerts(post, self._say_in_group)

    async def is_member(self, user_id: str) -> bool:
        """A member of the duty group now (asked once per 10 minutes per person)."""
        key = f"telegram:member:{self.staff_chat}:{user_id}"
        known = await self._shared.get(key)
        if known is not None:
            return known == "1"
        try:
            member = await self._sender.call(
                self.staff_chat, lambda: self.bot.get_chat_member(self.staff_chat, int(user_id))
            )
            is_member = member.status in MEMBER_STATUSES or bool(
                getattr(member, "is_member", False)
            )
        except DeliveryFailed as exc:
            log.warning("staff group: cannot check membership of %s: %s", user_id, exc.reason)
            return False
        await self._shared.set(key, "1" if is_member else "0", MEMBERSHIP_MEMORY)
        return is_member

    async def post_staff(self, text: str, *, reply_to: str = "", thread: int | None = None) -> str:
        """A message in the duty group (with the alert buttons when `thread`); its message id."""
        if not self.staff_chat:
            raise DeliveryFailed("telegram: MINYI_STAFF_TELEGRAM_CHAT is not set")
        reply = (
            ReplyParameters(int(reply_to), allow_sending_without_reply=True) if reply_to else None
        )
        keyboard = alert_keyboard(thread) if thread is not None else None
        message = await self._sender.call(
            self.staff_chat,
            lambda: self.bot.send_message(
                self.staff_chat, text, reply_markup=keyboard, reply_parameters=reply
            ),
        )
        return str(message.message_id)

    async def poll(self, stop: asyncio.Event) -> int:
        """Long-poll getUpdates until `stop` is set; how many updates were handled."""
        return await poll(self.bot, self.process, stop)

    async def _act(self, received: Received | None) -> None:
        if received is None:
            return  # edits, groups, service messages: not the citizen channel's business
        if received.callback_id:
            await self._acknowledge(received.callback_id)
        if received.inbound is None:
            return
        chat = received.inbound.sender
        async with self._shared.lock(_chat_lock(chat), CHAT_LOCK_SECONDS):
            await self._turn(received.inbound, received.pressed_message_id)

    async def _turn(self, inbound: Inbound, pressed: int | None) -> None:
        chat, shared = inbound.sender, self._shared
        progress = f"telegram:update:{chat}:{inbound.message_id}"
        # Replies an earlier delivery of this same update already sent (Telegram re-delivers
        # when we answered 5xx, or when our 200 got lost).
        done = int(await shared.get(progress) or 0)
        if pressed is not None and done == 0 and await self._stale(chat, pressed):
            await self._retire_keyboard(chat, pressed)
            return
        # A re-delivered update gets the same replies from the engine, and no second step.
        try:
            replies = await self.handle(inbound)
        except Throttled as exc:
            replies = [Reply(exc.text)]
        messages = render(replies)
        if done >= len(messages):
            return  # nothing to say, or all of it said by an earlier delivery
        try:
            sent = await self._deliver(chat, messages, skip=done, progress=progress)
        except RecipientUnreachable as exc:
            # Re-delivery cannot help; the notifier marks the identity when it hits this too.
            log.info("telegram chat %s cannot be reached: %s", chat, exc.reason)
            return
        if sent.keyboard_at is not None:
            current = str(sent.keyboard_at)
        elif any(m.keyboard for m in messages):
            current = "?"  # sent by an earlier delivery, id unknown: accept any button
        else:
            current = ""  # the question now asked has no buttons: every button is stale
        await shared.set(_keyboard_key(chat), current, KEYBOARD_MEMORY)

    async def _deliver(
        self, chat: str, messages: list[Outgoing], *, skip: int = 0, progress: str = ""
    ) -> _Sent:
        """Send messages[skip:] in order.

        With `progress`, how many went out is remembered even when one fails, so the next
        delivery of the same update continues after them.
        """
        sent, count = _Sent(), skip
        try:
            for message in messages[skip:]:
                result = await self._sender.send_message(chat, message.text, message.keyboard)
                count += 1
                sent.last = result.message_id
                if message.keyboard is not None:
                    sent.keyboard_at = result.message_id
        finally:
            if progress and count > skip:
                try:
                    await self._shared.set(progress, str(count), UPDATE_MEMORY)
                except Exception:
                    log.exception("could not record what was sent to telegram chat %s", chat)
        return sent

    async def _stale(self, chat: str, pressed: int) -> bool:
        """A button of an earlier question: its key would answer the current one wrongly."""
        current = await self._shared.get(_keyboard_key(chat))
        return current is not None and current not in ("?", str(pressed))

    async def _retire_keyboard(self, chat: str, message_id: int) -> None:
        """Take the buttons off an old question so they cannot be pressed again."""
        try:
            await self._sender.call(
                chat,
                lambda: self.bot.edit_message_reply_markup(chat, message_id, reply_markup=None),
            )
        except DeliveryFailed as exc:
            log.info("could not remove an old keyboard in chat %s: %s", chat, exc.reason)

    async def _acknowledge(self, callback_id: str) -> None:
        """Stop the button's spinner. A re-delivered press is too old to answer: that is fine."""
        try:
            await self.bot.answer_callback_query(callback_id)
        except TelegramError as exc:
            log.info("answerCallbackQuery failed: %s", exc.message)

    def _rejected(self, channel: str, reason: str) -> None:
        if self._services is not None:
            self._services.rejected(channel, reason)

    @property
    def _shared(self) -> SharedCache:
        if self._services is None:
            raise RuntimeError("the Telegram channel is not started")
        return self._services.shared

    @property
    def _sender(self) -> TelegramSender:
        if self.sender is None:
            raise RuntimeError("the Telegram channel is not started")
        return self.sender


@dataclass
class _Sent:
    """Telegram's ids of the last message sent, and of the last one carrying a keyboard."""

    last: int | None = None
    keyboard_at: int | None = None


def _chat_lock(chat: str) -> str:
    return f"telegram:chat:{chat}"


def _keyboard_key(chat: str) -> str:
    return f"telegram:keyboard:{chat}"
