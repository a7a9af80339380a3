"""The duty group at work: staff take an alert, see the case, talk with the citizen, and let go.

A claimed thread turns the citizen's chat into a conversation with a person: their messages go
to the group (as replies under the alert) instead of to the conversation engine, and what the
staff member writes reaches the citizen on their own channel, all on the case's timeline with
the staff member's name, until someone sends /done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.app.logs import mask_phones
from bot.backoffice.notifier import Notifier
from channels.base import DeliveryFailed
from channels.telegram import TelegramChannel
from channels.telegram.staff import StaffAction
from conversation.messages import Inbound, Reply
from storage.crypto import mask_name, mask_phone
from storage.models import Case, Citizen, Identity, StaffThread, utcnow
from storage.staff_threads import active_for, by_alert_message
from storage.uow import UnitOfWork

if TYPE_CHECKING:  # the runtime binds the desk; importing it here would be a cycle
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)


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


# Group messages that belong to a thread (relayed citizen words, our confirmations): replying to
# them talks to the same citizen. Kept as long as a thread may reasonably run.
MESSAGE_MEMORY = 30 * 24 * 3600.0
HISTORY_SHOWN = 8


class StaffDesk:
    def __init__(self, runtime: Runtime, telegram: TelegramChannel) -> None:
        self.runtime = runtime
        self.telegram = telegram
        self.notifier = Notifier(runtime)

    # -- the citizen writes while a person has the thread --------------------------------------

    async def relay_citizen(self, inbound: Inbound) -> bool:
        """True when the message went to the staff member instead of the engine."""
        if inbound.kind == "event":
            return False
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            thread = await active_for(uow.session, inbound.channel, inbound.sender)
            if thread is None:
                return False
            thread_id, case_id, alert = thread.id, thread.case_id, thread.alert_message_id
        seen = f"staff:relayed:{inbound.conversation_key}:{inbound.message_id}"
        async with runtime.store.lock(inbound.conversation_key):  # a channel's retries wait here
            if inbound.message_id and await runtime.shared.get(seen):
                return True  # a re-delivery of what was relayed already
            text = _words(inbound)
            posted = await self.telegram.post_staff(f"💬 群众：{mask_phones(text)}", reply_to=alert)
            await self._remember(posted, thread_id)
            if case_id is not None:
                await self._record(
                    case_id, "citizen.message", f"citizen:{inbound.channel}", {"text": text}
                )
            if inbound.message_id:
                await runtime.shared.set(seen, "1", MESSAGE_MEMORY)
        return True

    # -- what a member does in the group ------------------------------------------------------

    async def act(self, action: StaffAction) -> None:
        thread = await self._thread(action)
        if thread is None:
            await self._say_in_group(
                "找不到对应的群众。请回复告警消息或群众的消息后再说。", action.message_id
            )
            return
        if action.kind == "show":
            await self._show(thread, action)
            return
        if thread.done_at is not None:
            await self._say_in_group(
                "这段对话已经结束了。", action.message_id or thread.alert_message_id
            )
            return
        if action.kind == "done":
            await self._done(thread, action)
            return
        if action.kind == "claim" and thread.claimed_at is not None:
            # Claims are exclusive; a colleague may still answer by replying (shifts change).
            if thread.claimed_user != action.member.user_id:
                await self._say_in_group(f"已由{thread.claimed_by}认领。", thread.alert_message_id)
            return
        if thread.claimed_at is None:
            await self._claim(thread, action)
        if action.kind == "say":
            await self._tell(thread, action)

    async def _thread(self, action: StaffAction) -> Thread | None:
        # Asked before the unit of work opens: on SQLite a second transaction inside it would
        # wait for the first forever.
        remembered = (
            await self.runtime.shared.get(f"staff:message:{action.reply_to}")
            if action.reply_to
            else None
        )
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
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

    async def _claim(self, thread: Thread, action: StaffAction) -> None:
        name = action.member.name
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
            row = await uow.session.get(
                StaffThread, thread.id, with_for_update=self.runtime.db.is_postgres
            )
            assert row is not None
            if row.claimed_at is not None:  # someone was quicker
                thread.claimed_by, thread.claimed_user = row.claimed_by, row.claimed_user
                return
            row.claimed_by, row.claimed_user, row.claimed_at = name, action.member.user_id, utcnow()
            thread.claimed_by, thread.claimed_user, thread.claimed_at = (
                row.claimed_by,
                row.claimed_user,
                row.claimed_at,
            )
            await self._on_case(uow, row.case_id, "staff.claimed", {"staff": name})
            await uow.commit()
        confirmation = await self._say_in_group(
            f"✅ {name} 已认领。回复这条消息即可与群众对话，说完发送 /done。",
            thread.alert_message_id,
        )
        await self._remember(confirmation, thread.id)
        await self._to_citizen(thread, "staff.joined", name=name)

    async def _tell(self, thread: Thread, action: StaffAction) -> None:
        name, text = action.member.name, action.text[:2000]
        route, error = await self._to_citizen(thread, "staff.says", name=name, text=text)
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
            data = {
                "staff": name,
                "text": text,
                "route": route or "",
                "delivered": route is not None,
            }
            await self._on_case(uow, thread.case_id, "staff.message", data)
            await uow.commit()
        if route is None:
            await self._say_in_group(f"⚠️ 没有送达群众：{error}", action.message_id)

    async def _done(self, thread: Thread, action: StaffAction) -> None:
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
            row = await uow.session.get(StaffThread, thread.id)
            assert row is not None
            row.done_at = utcnow()
            await self._on_case(uow, row.case_id, "staff.done", {"staff": action.member.name})
            await uow.commit()
        await self._to_citizen(thread, "staff.left")
        await self._say_in_group(
            "已结束与群众的对话，之后群众的消息由系统答复。",
            action.message_id or thread.alert_message_id,
        )

    async def _show(self, thread: Thread, action: StaffAction) -> None:
        """The case as staff need it: status, what happened, the contact masked, the timeline."""
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
            if thread.case_id is None:
                text = f"（尚未立案）群众：{thread.channel}"
            else:
                case = await uow.session.get(Case, thread.case_id)
                assert case is not None
                name, phone = uow.cases.contact(case)
                lines = [
                    f"事项 {case.code}（{self._category(case)}）状态：{case.status}",
                    f"群众：{mask_name(name)} {mask_phone(phone) if phone else ''}".rstrip(),
                    f"地点：{case.location_text}",
                    f"情况：{mask_phones(case.description[:300])}",
                    "经过：",
                ]
                tz = self.runtime.settings.tz()
                for event in (await uow.events.events(case))[-HISTORY_SHOWN:]:
                    lines.append(
                        f"{event.at.astimezone(tz):%m-%d %H:%M} {event.type} {event.actor}"
                    )
                text = "\n".join(lines)
        reply = await self._say_in_group(text, thread.alert_message_id or action.message_id)
        await self._remember(reply, thread.id)

    # -- helpers --------------------------------------------------------------------------------

    async def _to_citizen(self, thread: Thread, key: str, **values: str) -> tuple[str | None, str]:
        """A catalog text to the citizen on their own channel: (the route used or None, why not)."""
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            identity = await uow.session.scalar(
                select(Identity).where(
                    Identity.channel == thread.channel, Identity.external_id == thread.external_id
                )
            )
            case = await uow.session.get(Case, thread.case_id) if thread.case_id else None
            phone = uow.cases.contact(case)[1] if case else ""
            citizen = (
                await uow.session.get(Citizen, case.citizen_id)
                if case and case.citizen_id
                else None
            )
            language = case.language if case else (identity.language if identity else "zh")
            routes = self.notifier.routes(thread.channel, identity, phone, citizen, chat_only=True)
            if phone and "sms" in runtime.channels and not (citizen and citizen.sms_opted_out_at):
                routes.append(
                    "sms"
                )  # a person's words must arrive: SMS when the chat cannot take them
        text = runtime.office.catalog.for_language(language)(key, **values)
        key_base = f"staff:{thread.id}:{utcnow().timestamp():.6f}"
        attempts = await self.notifier.reach(
            routes, thread.external_id, phone, [Reply(text)], key_base
        )
        delivered = next((a for a in attempts if a.ok), None)
        if delivered is not None:
            return delivered.route, ""
        return None, attempts[-1].error if attempts else "没有可用的渠道"

    async def _say_in_group(self, text: str, reply_to: str = "") -> str:
        try:
            return await self.telegram.post_staff(text, reply_to=reply_to)
        except DeliveryFailed as exc:
            log.warning("staff group: could not post: %s", exc.reason)
            return ""

    async def _remember(self, message_id: str, thread_id: int) -> None:
        if message_id:
            await self.runtime.shared.set(
                f"staff:message:{message_id}", str(thread_id), MESSAGE_MEMORY
            )

    async def _record(self, case_id: int, kind: str, actor: str, data: dict[str, object]) -> None:
        async with UnitOfWork(self.runtime.db, self.runtime.cipher) as uow:
            await self._on_case(uow, case_id, kind, data, actor)
            await uow.commit()

    async def _on_case(
        self,
        uow: UnitOfWork,
        case_id: int | None,
        kind: str,
        data: dict[str, object],
        actor: str = "",
    ) -> None:
        if case_id is None:
            return
        case = await uow.session.get(Case, case_id, with_for_update=self.runtime.db.is_postgres)
        if case is not None:
            who = actor or f"staff:{data.get('staff', '')}"
            await uow.events.append(case, kind, who, data)

    def _category(self, case: Case) -> str:
        found = self.runtime.office.category(case.category)
        return found.label("zh") if found else case.category


def _words(inbound: Inbound) -> str:
    if inbound.text:
        return inbound.text[:2000]
    if inbound.kind == "location" and inbound.location is not None:
        return f"[位置] {inbound.location.label or f'{inbound.location.lat:.5f},{inbound.location.lng:.5f}'}"
    return {"image": "[照片]", "voice": "[语音]"}.get(inbound.kind, "[消息]")
