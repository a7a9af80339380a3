"""The case lifecycle as rows: the one status change, and each step the back office reports.

`advance` is the only place a case's status is set; it asks the table in
`conversation.cases.lifecycle` and raises `IllegalTransition` otherwise. `record_progress`
applies one back-office step: status, deadlines and stages, timeline, `case.updated`, the
citizen's notice and, on closing, the satisfaction survey — all in the caller's unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from conversation.cases.citizen import CITIZEN_TOPICS
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.kinds import kind_of
from conversation.cases.lifecycle import IllegalTransition, next_status
from conversation.cases.progress import Progress
from conversation.cases.stages import STAGE_ANCHORS
from conversation.cases.surveys import SurveyRules

from .models import Case, CaseEvent
from .routing import set_co_departments
from .surveys import start_survey
from .uow import UnitOfWork

# Steps staff are alerted about (on every staff front end): the case came back, a leader wrote.
STAFF_TOPICS = frozenset({"returned", "instructed"})


class HasStatus(Protocol):
    """A case row, or the in-memory twin's record of one."""

    status: str
    review_due_at: datetime | None


def advance(case: HasStatus, event: str, now: datetime) -> str:
    """Move `case` by `event` as the table allows (or raise `IllegalTransition`); the status
    it had before."""
    before = case.status
    case.status = next_status(before, event, review_until=case.review_due_at, now=now)
    return before


async def record_progress(
    uow: UnitOfWork,
    case: Case,
    step: Progress,
    deadlines: LegalDeadlines,
    now: datetime,
    surveys: SurveyRules | None = None,
    *,
    staff_name: str = "",
) -> CaseEvent:
    """Apply one step. The caller holds the case row (`by_code(for_update=True)`) and commits.

    `staff_name` is the display name of the signed-in person who took it (the desk): it goes
    into the event's data, under the hash, beside the account named as its actor."""
    kind = kind_of(case.kind)
    if step.type == "extended" and case.extended_days:
        raise IllegalTransition(
            case.status,
            step.type,
            "The case was extended once already; the law allows one extension.",
        )
    if step.type == "adopted" and (kind.timed or case.outcome):
        raise IllegalTransition(
            case.status,
            step.type,
            "Only a suggestion is adopted or not, and its outcome is decided once."
            if kind.timed
            else "The suggestion's outcome was decided already.",
        )
    before = advance(case, step.type, now)
    data = step.data()
    if step.staff and not case.owner:
        case.owner = step.staff  # 首问责任制: whoever takes it first answers for it
    if step.type == "extended":
        base = case.finish_due_at or deadlines.finish_due(case.accepted_at or now)
        case.finish_due_at = deadlines.extended(base, step.days)
        case.extended_days, case.extension_reason = step.days, step.reason
        data["finish_by"] = uow.iso(case.finish_due_at)
    elif step.type == "accepted":
        case.accepted_at = now
        case.decided_at = case.decided_at or now
        case.finish_due_at = deadlines.finish_due(now)
        data["finish_by"] = uow.iso(case.finish_due_at)
    elif step.type == "assigned":
        case.routed_from, case.routed_by = case.department, step.staff or "backoffice"
        case.department = step.department
        await set_co_departments(uow.session, case, step.co_departments)
    elif step.type == "returned":
        # 退回 goes back to whoever routed it, and the case to the department it came from.
        data["back_to"] = case.routed_by
        data["from_department"] = case.department
        case.department = case.routed_from
        await set_co_departments(uow.session, case, ())
    elif step.type == "redirected":
        case.department = step.department
        case.decided_at = case.decided_at or now
    elif step.type == "adopted":
        case.outcome = step.outcome
    elif step.type == "replied":
        if case.first_replied_at is None:
            # Judged against the deadline in force now: a later review moves `finish_due_at`.
            case.first_replied_at, case.first_reply_due_at = now, case.finish_due_at
        case.replied_at = now
        case.review_due_at = deadlines.review_request_until(now)
        data["review_by"] = uow.iso(case.review_due_at)
    elif step.type == "closed":
        case.closed_at = now
    if case.status != before and case.status in STAGE_ANCHORS and kind.timed:
        # Entering an anchor again (assigned after a return) starts its unmet stages afresh.
        case.stages = [s for s in case.stages if not _unmet_from(s, case.status)] + (
            deadlines.stages_from(case.status, now)
        )
    if step.stage:
        case.stages = [_met(s, step.stage, now) for s in case.stages]
    actor = f"staff:{step.staff}" if step.staff else "backoffice"
    if staff_name:
        data["staff_name"] = staff_name
    event = await uow.events.append(case, step.type, actor, data, at=now)
    await uow.outbox.add(
        "case.updated",
        case.code,
        {
            "status": case.status,
            "event": {"seq": event.seq, "type": step.type, "at": uow.iso(now), **data},
        },
    )
    if step.type in CITIZEN_TOPICS:
        await uow.notifications.add(
            f"citizen:{case.code}:{event.seq}",
            "citizen",
            step.type,
            case,
            {"event_seq": event.seq, **data},
        )
    if step.type in STAFF_TOPICS:
        # A 退回 tells the one who routed it; a 批示 tells the handling department(s).
        await uow.notifications.add(
            f"staff:{step.type}:{case.code}:{event.seq}",
            "staff",
            step.type,
            case,
            {"event_seq": event.seq, **data},
        )
    if step.type == "closed" and kind.surveyed:
        await start_survey(uow, case, surveys or SurveyRules(), now)
    return event


def _unmet_from(stage: dict[str, Any], anchor: str) -> bool:
    return stage.get("anchor") == anchor and not stage.get("met_at")


def _met(stage: dict[str, Any], name: str, now: datetime) -> dict[str, Any]:
    if stage.get("name") == name and not stage.get("met_at"):
        return {**stage, "met_at": now.isoformat()}
    return stage
