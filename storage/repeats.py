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

from sqlalchemy import func, or_, select

from conversation.cases.escalation import EscalationRules
from conversation.cases.repeats import RepeatRules

from .escalation import escalate
from .models import Case
from .uow import UnitOfWork

CANDIDATES = 20  # the person's latest matters of the category that are compared at most


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
