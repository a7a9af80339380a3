"""Staff threads: which alert a staff member answers, and which citizen that reaches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.messages import Media

from .cases import attachment_rows
from .models import Case, Identity, StaffThread, StaffThreadMessage
from .people import insert_ignoring_duplicates_many
from .uow import UnitOfWork


async def open_threads(
    session: AsyncSession, wanted: Sequence[tuple[Any, str, str]]
) -> dict[int, int]:
    """A thread for each alert (its job — an ORM object or a row with `id` and `case_id` —,
    channel, channel id) — the one it has, or a new one —: the thread's id by the alert's, in
    one INSERT and one SELECT of two columns for them all."""
    if not wanted:
        return {}
    rows = [
        {
            "notification_id": job.id,
            "case_id": job.case_id,
            "channel": channel,
            "external_id": external_id,
        }
        for job, channel, external_id in wanted
    ]
    await insert_ignoring_duplicates_many(session, StaffThread, rows, ["notification_id"])
    found = await session.execute(
        select(StaffThread.notification_id, StaffThread.id).where(
            StaffThread.notification_id.in_([job.id for job, _, _ in wanted])
        )
    )
    return {row.notification_id: row.id for row in found}


async def by_alert_message(session: AsyncSession, message_id: str) -> StaffThread | None:
    return await session.scalar(
        select(StaffThread).where(StaffThread.alert_message_id == message_id)
    )


async def active_for(session: AsyncSession, channel: str, external_id: str) -> StaffThread | None:
    """The claimed, unfinished thread with this citizen, if any (the latest)."""
    return await session.scalar(
        select(StaffThread)
        .where(
            StaffThread.channel == channel,
            StaffThread.external_id == external_id,
            StaffThread.claimed_at.is_not(None),
            StaffThread.done_at.is_(None),
        )
        .order_by(StaffThread.claimed_at.desc())
        .limit(1)
    )


async def relay_from_citizen(
    uow: UnitOfWork,
    thread_id: int,
    text: str,
    message_id: str,
    photos: Sequence[Media] = (),
) -> bool:
    """The citizen wrote while a staff member has them: onto the case's timeline, and queued
    for the staff front ends of the thread. False when the thread has ended (or never was).

    Photos become the case's attachments (fetched from the channel like any other) and the
    words link to each on the desk; a thread without a case has nowhere to keep them."""
    thread = await uow.session.get(StaffThread, thread_id)
    if thread is None or thread.done_at is not None:
        return False
    case = None
    if thread.case_id is not None:
        case = await uow.session.get(Case, thread.case_id, with_for_update=uow.db.is_postgres)
    if case is not None and photos:
        rows = attachment_rows(thread.channel, photos)
        for row in rows:
            row.case_id = case.id
            uow.session.add(row)
        await uow.session.flush()  # the ids, for the links
        text = " ".join([text, *(photo_path(case.code, row.id) for row in rows)])
    if case is not None:
        await uow.events.append(
            case, "citizen.message", f"citizen:{thread.channel}", {"text": text}
        )
    await add_message(uow, thread.id, "citizen", text)
    await uow.notifications.add(
        f"staff:thread:{thread.id}:{message_id}",
        "staff",
        "citizen.message",
        case,
        {"thread": thread.id, "text": text},
    )
    return True


def photo_path(code: str, attachment_id: int) -> str:
    """Where the desk shows one of a case's photos (bot/desk/photos.py)."""
    return f"/desk/cases/{code}/photos/{attachment_id}"


async def latest_for_case(session: AsyncSession, case_id: int) -> StaffThread | None:
    """The case's thread still going, if any (the latest)."""
    return await session.scalar(
        select(StaffThread)
        .where(StaffThread.case_id == case_id, StaffThread.done_at.is_(None))
        .order_by(StaffThread.id.desc())
        .limit(1)
    )


async def open_for_case(uow: UnitOfWork, case: Case) -> StaffThread | None:
    """A thread on a case no alert opened one for (认领 by its code): with whoever filed it."""
    identity = await uow.session.get(Identity, case.identity_id)
    if identity is None:
        return None
    thread = StaffThread(
        case_id=case.id, channel=identity.channel, external_id=identity.external_id
    )
    uow.session.add(thread)
    await uow.session.flush()
    return thread


def changed(uow: UnitOfWork, thread_id: int) -> None:
    """The thread changed in this unit of work: live views of it refresh after the commit."""
    uow.touched.add(f"thread:{thread_id}")


async def add_message(
    uow: UnitOfWork, thread_id: int, author: str, text: str, staff_name: str = ""
) -> None:
    uow.session.add(
        StaffThreadMessage(
            thread_id=thread_id,
            author=author,
            staff_name=staff_name,
            text_enc=uow.cipher.encrypt(text, "thread-message"),
        )
    )
    changed(uow, thread_id)


async def messages(uow: UnitOfWork, thread_id: int, limit: int = 200) -> list[tuple[str, str, str]]:
    """The thread's latest messages, oldest first, as (author, staff name, text)."""
    rows = list(
        await uow.session.scalars(
            select(StaffThreadMessage)
            .where(StaffThreadMessage.thread_id == thread_id)
            .order_by(StaffThreadMessage.id.desc())
            .limit(limit)
        )
    )
    return [
        (row.author, row.staff_name, uow.cipher.decrypt(row.text_enc, "thread-message"))
        for row in reversed(rows)
    ]
