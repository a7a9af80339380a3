"""The duty group at work: staff take an alert, see the case, talk with the citizen, and let go.

A claimed thread turns the citizen's chat into a conversation with a person: the conversation
is handed over (its state says so, so the citizen's next message goes to the thread, not to the
flows), what the staff member writes is queued for the citizen on their own channel, and all of
it lands on the case's timeline with the staff member's name, until someone sends /done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

from sqlalchemy import select

from bot.app.logs import mask_phones
from channels.base import DeliveryFailed, SharedCache
from channels.telegram.staff import GroupSay, StaffAction
from conversation.office import OfficeConfig
from storage.crypto import mask_name, mask_phone
from storage.models import Case, StaffThread, utcnow
from storage.staff_threads import by_alert_message
from storage.uow import UnitOfWork, Units

log = logging.getLogger(__name__)

# Group messages that belong to a thread (relayed citizen words, our confirmations): replying to
# them talks to the same citizen. Kept as long as a thread may reasonably run.
MESSAGE_MEMORY = 30 * 24 * 3600.0
HISTORY_SHOWN = 8
WORDS_LIMIT = 2000


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


class DutyGroup:
    def __init__(
        self,
        units: Units,
        shared: SharedCache,
        office: OfficeConfig,
        tz: tzinfo,
        conversations: Conversations,
    ) -> None:
        self.units = units
        self.shared = shared
        self.office = office
        self.t = office.catalog.for_language("zh")  # staff read the office's language
        self.tz = tz
        self.conversations = conversations

    async def act(self, action: StaffAction, say: GroupSay) -> None:
        """What a member did in the group; `say` answers there."""
        thread = await self._thread(action)
        if thread is None:
            await _say(say, self.t("staff.group.no_thread"), action.message_id)
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
        if action.kind == "say":
            await self._tell(thread, action)

    async def _thread(self, action: StaffAction) -> Thread | None:
        # Asked before the unit of work opens: on SQLite a second transaction inside it would
        # wait for the first forever.
        remembered = (
            await self.shared.get(f"staff:message:{action.reply_to}") if action.reply_to else None
        )
        async with self.units() as uow:
            row = await self._find(uow, action, remembered)
            return Thread.of(row) if row is not None else None

    async def _find(
        self, uow: UnitOfWork, action: StaffAction, remembered: str | None
    ) -> StaffThread | None:
        if action.thread is not None:
            return await uow.session.get(StaffThread, action.thread)
        if action.reply_to:
            thread = await by_alert_message(uow.session, action.reply_to)
            if thread is not None:
                return thread
            if remembered:
                return await uow.session.get(StaffThread, int(remembered))
        if action.kind == "done":  # /done alone: the member's one open thread, if just one
            mine = list(
                await uow.session.scalars(
                    select(StaffThread).where(
                        StaffThread.claimed_user == action.member.user_id,
                        StaffThread.done_at.is_(None),
                    )
                )
            )
            return mine[0] if len(mine) == 1 else None
        return None

    async def _claim(self, thread: Thread, action: StaffAction, say: GroupSay) -> None:
        name = action.member.name
        async with self.units() as uow:
            row = await uow.session.get(StaffThread, thread.id, with_for_update=uow.db.is_postgres)
            assert row is not None
            if row.claimed_at is not None:  # someone was quicker
                thread.claimed_by, thread.claimed_user = row.claimed_by, row.claimed_user
                return
            row.claimed_by, row.claimed_user, row.claimed_at = name, action.member.user_id, utcnow()
            thread.claimed_by, thread.claimed_user = row.claimed_by, row.claimed_user
            thread.claimed_at = row.claimed_at
            case = await _case(uow, row.case_id)
            if case is not None:
                await uow.events.append(case, "staff.claimed", f"staff:{name}", {"staff": name})
            await _to_citizen(uow, row, case, "staff.joined", f"{action.update_id}", staff=name)
            await uow.commit()
        try:
            await self.conversations.hand_over(thread.channel, thread.external_id, thread.id)
        except Exception:
            # The claim stands and the staff member can write; the citizen's own messages go to
            # the bot until the conversation store is back (Redis down, a long turn).
            log.exception("staff thread %s: the conversation could not be handed over", thread.id)
        confirmation = await _say(
            say, self.t("staff.group.claimed", name=name), thread.alert_message_id
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
            await uow.commit()

    async def _done(self, thread: Thread, action: StaffAction, say: GroupSay) -> None:
        name = action.member.name
        async with self.units() as uow:
            row = await uow.session.get(StaffThread, thread.id, with_for_update=uow.db.is_postgres)
            assert row is not None
            row.done_at = utcnow()
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
        await _say(say, self.t("staff.group.done"), reply_to)

    async def _show(self, thread: Thread, action: StaffAction, say: GroupSay) -> None:
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


async def _say(say: GroupSay, text: str, reply_to: str) -> str:
    try:
        return await say(text, reply_to)
    except DeliveryFailed as exc:
        log.warning("staff group: could not post: %s", exc.reason)
        return ""
