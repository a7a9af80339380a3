"""Staff threads at work, whatever the front end (the Telegram duty group, the WeCom app):
staff take a conversation, see the case, talk with the citizen, and let go.

A claimed thread turns the citizen's chat into a conversation with a person: the conversation
is handed over (its state says so, so the citizen's next message goes to the thread, not to the
flows), what the staff member writes is queued for the citizen on their own channel, and all of
it lands on the case's timeline with the staff member's name, until they end it (/done, 结束).
A thread grows from an alert (its buttons, or a reply to it in the group), or is opened on a
case by its code (认领 XF…).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Protocol

from sqlalchemy import select

from bot.app.logs import mask_phones
from channels.base import DeliveryFailed, SharedCache
from channels.staff import Say, StaffAction, StaffMember
from conversation.office import OfficeConfig
from storage.crypto import mask_name, mask_phone
from storage.models import Case, StaffThread, utcnow
from storage.staff_threads import (
    add_message,
    by_alert_message,
    changed,
    latest_for_case,
    open_for_case,
)
from storage.uow import UnitOfWork, Units

log = logging.getLogger(__name__)

# Group messages that belong to a thread (relayed citizen words, our confirmations): replying to
# them talks to the same citizen. Kept as long as a thread may reasonably run.
MESSAGE_MEMORY = 30 * 24 * 3600.0
HISTORY_SHOWN = 8
WORDS_LIMIT = 2000


class Directory(Protocol):
    """Who a front end's member is: the person behind a WeCom userid is a staff account (None
    when they have none, or it is disabled); a member of the duty group is who Telegram says."""

    def resolve(self, member: StaffMember) -> Awaitable[StaffMember | None]: ...


class Conversations(Protocol):
    """Who answers a citizen: the bot, or a staff member (the engine's hand-over)."""

    def hand_over(self, channel: str, sender: str, thread: int) -> Awaitable[None]: ...

    def take_back(self, channel: str, sender: str, thread: int) -> Awaitable[None]: ...


@dataclass
class Thread:
    """A staff thread as read, usable after its unit of work ended."""

    id: int
    case_id: int | None
    channel: str
    external_id: str
    alert_message_id: str
    claimed_by: str
    claimed_user: str
    claimed_at: datetime | None
    done_at: datetime | None
    case_code: str = ""

    @classmethod
    def of(cls, row: StaffThread) -> Thread:
        return cls(
            row.id,
            row.case_id,
            row.channel,
            row.external_id,
            row.alert_message_id,
            row.claimed_by,
            row.claimed_user,
            row.claimed_at,
            row.done_at,
        )


async def remember_post(shared: SharedCache, message_id: str, thread_id: int) -> None:
    """A group message that belongs to a thread: replying to it talks to the same citizen."""
    if message_id:
        await shared.set(f"staff:message:{message_id}", str(thread_id), MESSAGE_MEMORY)


class StaffThreads:
    def __init__(
        self,
        units: Units,
        shared: SharedCache,
        office: OfficeConfig,
        tz: tzinfo,
        conversations: Conversations,
        directory: Directory,
    ) -> None:
        self.units = units
        self.shared = shared
        self.office = office
        self.t = office.catalog.for_language("zh")  # staff read the office's language
        self.tz = tz
        self.conversations = conversations
        self.directory = directory

    async def act(self, action: StaffAction, say: Say) -> None:
        """What a member did on their front end; `say` answers them there."""
        member = await self.directory.resolve(action.member)
        if member is None:
            await _say(say, self.t("staff.no_account", user=action.member.name), "")
            return
        action = replace(action, member=member)
        if action.kind == "say" and not action.text:
            await _say(say, self.t("staff.text_only"), action.message_id)
            return
        thread = await self._thread(action)
        if thread is None:
            await _say(say, self._not_found(action), action.message_id)
            return
        if action.kind == "show":
            await self._show(thread, action, say)
            return
        if thread.done_at is not None:
            reply_to = action.message_id or thread.alert_message_id
            await _say(say, self.t("staff.group.ended"), reply_to)
            return
        if action.kind == "done":
            await self._done(thread, action, say)
            return
        if action.kind == "claim" and thread.claimed_at is not None:
            # Claims are exclusive; a colleague may still answer by replying (shifts change).
            if thread.claimed_user != action.member.user_id:
                text = self.t("staff.group.claimed_by", name=thread.claimed_by)
                await _say(say, text, thread.alert_message_id)
            return
        if thread.claimed_at is None:
            await self._claim(thread, action, say)
        elif action.kind == "claim":
            await self._current(action.member, thread.id)  # taking one's own again: switch to it
            await _say(say, self.t("staff.claimed_again", code=thread.case_code), "")
        if action.kind == "say":
            await self._tell(thread, action)

    def _not_found(self, action: StaffAction) -> str:
        if action.case_code:
            return self.t("staff.no_case", code=action.case_code)
        if action.reply_to or action.thread is not None:
            return self.t("staff.group.no_thread")
        return self.t("staff.nothing_claimed")

    async def _thread(self, action: StaffAction) -> Thread | None:
        # Asked before the unit of work opens: on SQLite a second transaction inside it would
        # wait for the first forever.
        remembered = (
            await self.shared.get(f"staff:message:{action.reply_to}") if action.reply_to else None
        )
        current = await self.shared.get(f"staff:current:{action.member.user_id}")
        async with self.units() as uow:
            row = await self._find(uow, action, remembered, current)
            if row is None:
                return None
            thread = Thread.of(row)
            case = await uow.session.get(Case, row.case_id) if row.case_id else None
            thread.case_code = case.code if case else ""
            await uow.commit()  # a thread opened on a case by its code
            return thread

    async def _find(
        self, uow: UnitOfWork, action: StaffAction, remembered: str | None, current: str | None
    ) -> StaffThread | None:
        if action.thread is not None:
            return await uow.session.get(StaffThread, action.thread)
        if action.case_code:
            case = await uow.cases.by_code(action.case_code)
            if case is None:
                return None
            found = await latest_for_case(uow.session, case.id)
            if found is None and action.kind == "claim":
                found = await open_for_case(uow, case)
            return found
        if action.reply_to:
            thread = await by_alert_message(uow.session, action.reply_to)
            if thread is not None:
                return thread
            if remembered:
                return await uow.session.get(StaffThread, int(remembered))
        if action.reply_to or action.kind not in ("say", "done"):
            return None
        # Words or 结束 alone: the member's current thread (the one claimed last), else their
        # one open thread. With several and none current, nothing: never the wrong citizen.
        mine = {
            thread.id: thread
            for thread in await uow.session.scalars(
                select(StaffThread).where(
                    StaffThread.claimed_user == action.member.user_id,
                    StaffThread.done_at.is_(None),
                )
            )
        }
        if current is not None and current.isdigit() and int(current) in mine:
            return mine[int(current)]
        return next(iter(mine.values())) if len(mine) == 1 else None

    async def _current(self, member: StaffMember, thread_id: int) -> None:
        await self.shared.set(f"staff:current:{member.user_id}", str(thread_id), MESSAGE_MEMORY)

    async def _claim(self, thread: Thread, action: StaffAction, say: Say) -> None:
        name = action.member.name
        async with self.units() as uow:
            row = await uow.session.get(StaffThread, thread.id, with_for_update=uow.db.is_postgres)
            assert row is not None
            if row.claimed_at is not None:  # someone was quicker
                thread.claimed_by, thread.claimed_user = row.claimed_by, row.claimed_user
                return
            row.claimed_by, row.claimed_user, row.claimed_at = name, action.member.user_id, utcnow()
            changed(uow, row.id)
            thread.claimed_by, thread.claimed_user = row.claimed_by, row.claimed_user
            thread.claimed_at = row.claimed_at
            case = await _case(uow, row.case_id)
            if case is not None:
                await uow.events.append(case, "staff.claimed", f"staff:{name}", {"staff": name})
            await _to_citizen(uow, row, case, "staff.joined", f"{action.update_id}", staff=name)
            await uow.commit()
        await self._current(action.member, thread.id)
        try:
            await self.conversations.hand_over(thread.channel, thread.external_id, thread.id)
        except Exception:
            # The claim stands and the staff member can write; the citizen's own messages go to
            # the bot until the conversation store is back (Redis down, a long turn).
            log.exception("staff thread %s: the conversation could not be handed over", thread.id)
        confirmation = await _say(
            say,
            self.t(f"staff.{action.front}.claimed", name=name, code=thread.case_code),
            thread.alert_message_id,
        )
        await remember_post(self.shared, confirmation, thread.id)

    async def _tell(self, thread: Thread, action: StaffAction) -> None:
        name, text = action.member.name, action.text[:WORDS_LIMIT]
        async with self.units() as uow:
            row = await uow.session.get(StaffThread, thread.id)
            assert row is not None
            case = await _case(uow, row.case_id)
            if case is not None:
                data = {"staff": name, "text": text}
                await uow.events.append(case, "staff.message", f"staff:{name}", data)
            await _to_citizen(
                uow, row, case, "staff.says", f"{action.update_id}", staff=name, text=text
            )
            await add_message(uow, row.id, "staff", text, name)
            await uow.commit()

    async def _done(self, thread: Thread, action: StaffAction, say: Say) -> None:
        name = action.member.name
        async with self.units() as uow:
            row = await uow.session.get(StaffThread, thread.id, with_for_update=uow.db.is_postgres)
            assert row is not None
            row.done_at = utcnow()
            changed(uow, row.id)
            case = await _case(uow, row.case_id)
            if case is not None:
                await uow.events.append(case, "staff.done", f"staff:{name}", {"staff": name})
            await _to_citizen(uow, row, case, "staff.left", f"{action.update_id}", staff=name)
            await uow.commit()
        try:
            await self.conversations.take_back(thread.channel, thread.external_id, thread.id)
        except Exception:
            # The thread is done: the next message from the citizen finds it so and goes to
            # the bot anyway (storage/staff_threads.py relay_from_citizen).
            log.exception("staff thread %s: the conversation could not be taken back", thread.id)
        reply_to = action.message_id or thread.alert_message_id
        await _say(say, self.t(f"staff.{action.front}.done", code=thread.case_code), reply_to)

    async def _show(self, thread: Thread, action: StaffAction, say: Say) -> None:
        """The case as staff need it: status, what happened, the contact masked, the timeline."""
        t = self.t
        async with self.units() as uow:
            case = await _case(uow, thread.case_id)
            if case is None:
                text = t("staff.show.unfiled", channel=thread.channel)
            else:
                name, phone = uow.cases.contact(case)
                lines = [
                    t(
                        "staff.show.case",
                        code=case.code,
                        category=self._category(case),
                        status=t(f"status.{case.status}"),
                    ),
                    t(
                        "staff.show.citizen",
                        name=mask_name(name),
                        phone=mask_phone(phone) if phone else "",
                    ).rstrip(),
                    t("staff.show.place", place=case.location_text),
                    t("staff.show.what", text=mask_phones(case.description[:300])),
                    t("staff.show.history"),
                ]
                for event in (await uow.events.events(case))[-HISTORY_SHOWN:]:
                    lines.append(
                        f"{event.at.astimezone(self.tz):%m-%d %H:%M} {event.type} {event.actor}"
                    )
                text = "\n".join(lines)
        reply = await _say(say, text, thread.alert_message_id or action.message_id)
        await remember_post(self.shared, reply, thread.id)

    def _category(self, case: Case) -> str:
        found = self.office.category(case.category)
        return found.label("zh") if found else case.category


async def _case(uow: UnitOfWork, case_id: int | None) -> Case | None:
    if case_id is None:
        return None
    return await uow.session.get(Case, case_id, with_for_update=uow.db.is_postgres)


async def _to_citizen(
    uow: UnitOfWork, thread: StaffThread, case: Case | None, topic: str, key: str, **data: str
) -> None:
    """Queue a staff member's words for the citizen (citizen_notices.py carries them)."""
    await uow.notifications.add(
        f"citizen:thread:{thread.id}:{topic}:{key}",
        "citizen",
        topic,
        case,
        {"thread": thread.id, **data},
    )


async def _say(say: Say, text: str, reply_to: str) -> str:
    try:
        return await say(text, reply_to)
    except DeliveryFailed as exc:
        log.warning("staff group: could not post: %s", exc.reason)
        return ""
