"""The deadline scheduler: `deadline.warning` ahead of a limit and `deadline.missed` after it.

Each fires once per case, deadline and due time — across restarts and several workers — because
it is raised only by whoever inserts its mark (a unique row) in the same transaction as the
timeline entry, the stream event and the staff alert. A new due time (an extension) is a new
deadline and warns again. The warning comes at most a quarter of the limit's span ahead (see
`conversation.cases.deadlines`), so a fresh one-day stage does not page anyone at once.

A miss also raises the case's 督办 level one step (storage/escalation.py), in the same
transaction as its mark, so it too happens once per lapse. Cases the citizen urged (催办) more
often than the office allows are raised once as well, marked like a deadline (`urged`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import String, cast, func, or_, select

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.due import OWING, Due
from conversation.cases.escalation import EscalationRules
from storage.documents import deadlines_of
from storage.escalation import escalate
from storage.models import Case, CaseEvent, DeadlineMark, utcnow
from storage.people import insert_ignoring_duplicates
from storage.uow import UnitOfWork

# The mark of "this case's urging raised it already" (one per case, whatever the count).
URGED = "urged"


def levels_reached(due: Due, now: datetime, deadlines: LegalDeadlines) -> list[str]:
    if now > due.due_at:
        return ["warning", "missed"]
    if now >= due.due_at - deadlines.warning_lead(due.span):
        return ["warning"]
    return []


async def scan(
    units: Callable[[], UnitOfWork],
    deadlines: LegalDeadlines,
    now: datetime | None = None,
    escalation: EscalationRules | None = None,
) -> int:
    """Raise what is due; the number of warnings, misses and urgings raised."""
    now = now or utcnow()
    rules = escalation or EscalationRules()
    horizon = now + deadlines.warn_before  # no lead is longer than the configured one
    async with units() as uow:
        cases = await uow.session.scalars(
            select(Case).where(
                Case.status.in_(OWING),
                or_(
                    Case.accept_due_at <= horizon,
                    Case.finish_due_at <= horizon,
                    cast(Case.stages, String) != "[]",
                ),
            )
        )
        raised = 0
        for case in list(cases):
            for due in deadlines_of(case):
                if not due.office:
                    continue  # the citizen's window to ask for a review: nothing to warn
                levels = levels_reached(due, now, deadlines)
                for level in levels:
                    if await _mark(uow, case, due, level) and (
                        level == "missed" or len(levels) == 1
                    ):
                        await _raise(uow, case, due, level)
                        raised += 1
                        if level == "missed":
                            facts = {"deadline": due.kind, "due_at": uow.iso(due.due_at)}
                            await escalate(uow, case, rules, now, cause="deadline", facts=facts)
        raised += await _urgings(uow, rules, now)
        await uow.commit()
    return raised


async def _urgings(uow: UnitOfWork, rules: EscalationRules, now: datetime) -> int:
    """Raise, once each, the open cases urged (催办) more often than `urge_limit`."""
    if not rules.levels or rules.urge_limit <= 0:
        return 0
    count = func.count(CaseEvent.id)
    urged = (
        select(CaseEvent.case_id, count)
        .where(CaseEvent.type == "urged")
        .group_by(CaseEvent.case_id)
        .having(count > rules.urge_limit)
        .subquery()
    )
    marked = select(DeadlineMark.id).where(
        DeadlineMark.case_id == Case.id, DeadlineMark.deadline == URGED
    )
    rows = await uow.session.execute(
        select(Case, urged.c[1])
        .join(urged, urged.c.case_id == Case.id)
        .where(Case.status.in_(OWING), ~marked.exists())
    )
    raised = 0
    for case, times in list(rows):
        due = Due(URGED, case.created_at, timedelta(0))
        if await _mark(uow, case, due, "escalated"):
            await escalate(uow, case, rules, now, cause="urged", facts={"count": int(times)})
            raised += 1
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
    data = {"deadline": due.kind, "due_at": uow.iso(due.due_at), "level": level}
    await uow.events.append(case, f"deadline.{level}", "minyi", data)
    await uow.outbox.add(f"deadline.{level}", case.code, data)
    key = f"staff:deadline:{case.code}:{due.kind}:{level}:{due.due_at.isoformat()}"
    await uow.notifications.add(key, "staff", f"deadline.{level}", case, data)
