"""重复信访 on the case rows: a new case linked to the earlier one of the same matter, and the
filing that is raised (提级 / 包案). The rule is conversation.cases.repeats; the text similarity (conversation/similarity.py) is
given by the caller.

A repeat is never merged: the new case keeps its own code and timeline, points at the first case
of the matter (`repeat_of`) and says which filing it is (`repeat_level`), and a `linked` event on
it names the case it repeats, so staff see both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update

from conversation.cases.escalation import EscalationRules
from conversation.cases.repeats import RepeatRules

from .escalation import escalate
from .models import Case
from .uow import UnitOfWork

CANDIDATES = 20  # the person's latest matters of the category that are compared at most
DUPLICATE_CANDIDATES = 50  # other people's, around the case's filing, for the desk


async def link_repeat(
    uow: UnitOfWork,
    case: Case,
    rules: RepeatRules,
    escalation: EscalationRules,
    now: datetime,
    similarity: Callable[[str, str], float],
) -> Case | None:
    """Link `case` to the earlier case of the same matter, if there is one (and raise the
    `raise_at`-th filing); the earlier case it repeats, or None. Marks `case` compared."""
    case.repeat_checked_at = now
    if not case.description:
        return None
    same_person = [Case.identity_id == case.identity_id]
    if case.citizen_id is not None:
        same_person.append(Case.citizen_id == case.citizen_id)
    earlier = list(
        await uow.session.scalars(
            select(Case)
            .where(
                Case.id != case.id,
                Case.kind == case.kind,
                Case.category == case.category,
                Case.created_at >= case.created_at - timedelta(days=rules.window_days),
                Case.created_at <= case.created_at,
                or_(*same_person),
            )
            .order_by(Case.created_at.desc())
            .limit(CANDIDATES)
        )
    )
    scored = [(similarity(e.description, case.description), e) for e in earlier]
    best = max(scored, key=lambda pair: pair[0], default=None)
    if best is None or best[0] < rules.similar_at:
        return None
    score, match = best
    root_id = match.repeat_of or match.id
    root = await uow.session.get(Case, root_id)
    assert root is not None
    filings = 1 + int(
        await uow.session.scalar(
            select(func.count()).select_from(Case).where(Case.repeat_of == root_id)
        )
        or 0
    )
    case.repeat_of, case.repeat_level = root_id, filings + 1
    # 一次性化解 asks of each earlier filing whether the matter came back, and when it first did.
    await uow.session.execute(
        update(Case)
        .where(
            or_(Case.id == root_id, Case.repeat_of == root_id),
            Case.id != case.id,
            Case.created_at <= case.created_at,
            Case.refiled_at.is_(None),
        )
        .values(refiled_at=case.created_at)
        .execution_options(synchronize_session="fetch")
    )
    data = {
        "to": match.code,
        "first": root.code,
        "score": round(score, 1),
        "filing": case.repeat_level,
    }
    event = await uow.events.append(case, "linked", "minyi", data, at=now)
    await uow.outbox.add(
        "case.updated",
        case.code,
        {
            "status": case.status,
            "repeat_level": case.repeat_level,
            "event": {"seq": event.seq, "type": "linked", "at": uow.iso(now), **data},
        },
    )
    if case.repeat_level >= rules.raise_at:
        # 提级 / 包案: straight to the top level, its people told why.
        await escalate(
            uow,
            case,
            escalation,
            now,
            cause="repeat",
            facts={"filing": case.repeat_level, "first": root.code},
            to_top=True,
        )
    return match


async def possible_duplicates(
    uow: UnitOfWork,
    case: Case,
    rules: RepeatRules,
    similarity: Callable[[str, str], float],
    scope: ColumnElement[bool] | None = None,
    limit: int = 5,
) -> list[tuple[Case, float]]:
    """Other people's cases of the category, filed within the window around `case`, that read
    like the same matter (score ≥ `duplicate_at`): for staff to link, never linked by itself."""
    window = timedelta(days=rules.window_days)
    others = [Case.identity_id != case.identity_id]
    if case.citizen_id is not None:
        others.append(or_(Case.citizen_id.is_(None), Case.citizen_id != case.citizen_id))
    rows = await uow.session.scalars(
        select(Case)
        .where(
            Case.id != case.id,
            Case.kind == case.kind,
            Case.category == case.category,
            Case.created_at >= case.created_at - window,
            Case.created_at <= case.created_at + window,
            *others,
            *([scope] if scope is not None else []),
        )
        .order_by(Case.created_at.desc())
        .limit(DUPLICATE_CANDIDATES)
    )
    scored = [(other, similarity(other.description, case.description)) for other in rows]
    close = [(other, score) for other, score in scored if score >= rules.duplicate_at]
    return sorted(close, key=lambda pair: -pair[1])[:limit]


async def link_duplicate(
    uow: UnitOfWork, case: Case, other: Case, actor: str, staff_name: str, now: datetime
) -> None:
    """Staff say `case` is the same matter as another person's `other` (重件): a `linked` event
    on `case`, in the stream; nothing is merged."""
    data = {"to": other.code, "duplicate": True, "staff_name": staff_name}
    event = await uow.events.append(case, "linked", actor, data, at=now)
    await uow.outbox.add(
        "case.updated",
        case.code,
        {
            "status": case.status,
            "event": {"seq": event.seq, "type": "linked", "at": uow.iso(now), **data},
        },
    )
