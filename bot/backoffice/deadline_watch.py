"""The deadline scheduler: `deadline.warning` ahead of a limit and `deadline.missed` after it.

Each fires once per case, deadline and due time — across restarts and several workers — because
it is raised only by whoever inserts its mark (a unique row) in the same transaction as the
timeline entry, the stream event and the staff alert. A new due time (an extension) is a new
deadline and warns again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import String, cast, or_, select

from bot.backoffice.deadlines import Due, LegalDeadlines
from storage.models import Case, DeadlineMark, utcnow
from storage.people import insert_ignoring_duplicates
from storage.uow import UnitOfWork

OPEN = ("submitted", "accepted", "assigned", "returned", "review_requested")
STAGES_CLOSE_AT = frozenset({"replied", "closed", "rated", "redirected"})


def open_deadlines(case: Case) -> list[Due]:
    """What the office still owes on this case, by its status."""
    dues: list[Due] = []
    if case.status == "submitted" and case.accept_due_at:
        dues.append(Due("accept", case.accept_due_at))
    elif case.status in ("accepted", "assigned", "returned") and case.finish_due_at:
        dues.append(Due("finish", case.finish_due_at))
    elif case.status == "review_requested" and case.finish_due_at:
        dues.append(Due("review_decision", case.finish_due_at))
    if case.status not in STAGES_CLOSE_AT:
        for stage in case.stages or []:
            if not stage.get("met_at"):
                dues.append(Due(f"stage:{stage['name']}", datetime.fromisoformat(stage["due_at"])))
    return dues


def levels_reached(due: Due, now: datetime, deadlines: LegalDeadlines) -> list[str]:
    if now > due.due_at:
        return ["warning", "missed"]
    if now >= due.due_at - deadlines.warn_before:
        return ["warning"]
    return []


async def scan(
    units: Callable[[], UnitOfWork], deadlines: LegalDeadlines, now: datetime | None = None
) -> int:
    """Raise what is due; the number of warnings and misses raised."""
    now = now or utcnow()
    horizon = now + deadlines.warn_before
    async with units() as uow:
        cases = await uow.session.scalars(
            select(Case).where(
                Case.status.in_(OPEN),
                or_(
                    Case.accept_due_at <= horizon,
                    Case.finish_due_at <= horizon,
                    cast(Case.stages, String) != "[]",
                ),
            )
        )
        raised = 0
        for case in list(cases):
            for due in open_deadlines(case):
                levels = levels_reached(due, now, deadlines)
                for level in levels:
                    if await _mark(uow, case, due, level) and (
                        level == "missed" or len(levels) == 1
                    ):
                        await _raise(uow, case, due, level)
                        raised += 1
        await uow.commit()
    return raised


async def _mark(uow: UnitOfWork, case: Case, due: Due, level: str) -> bool:
    """True when this call is the first to mark it. A missed deadline marks its warning too,
    silently, so a watcher that was down never warns after the fact."""
    values = {
        "case_id": case.id,
        "deadline": due.kind,
        "due_at": due.due_at,
        "level": level,
        "created_at": utcnow(),
    }
    return await insert_ignoring_duplicates(
        uow.session, DeadlineMark, values, ["case_id", "deadline", "due_at", "level"]
    )


async def _raise(uow: UnitOfWork, case: Case, due: Due, level: str) -> None:
    data = {"deadline": due.kind, "due_at": due.due_at.isoformat(), "level": level}
    await uow.events.append(case, f"deadline.{level}", "minyi", data)
    await uow.outbox.add(f"deadline.{level}", case.code, data)
    key = f"staff:deadline:{case.code}:{due.kind}:{level}:{due.due_at.isoformat()}"
    await uow.notifications.add(key, "staff", f"deadline.{level}", case, data)
