"""督办: raising a case's supervision level one step, with why, and alerting that level.

Not a status change (the lifecycle's table is untouched): the level is a second axis beside
the status. Callers make each cause fire once — the deadline watch by its unique mark per
lapse, urging by its mark per case — and hold the case row for the read-modify-write of the
level (`escalate` locks it), so two workers never both raise it from the same step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversation.cases.escalation import EscalationRules

from .models import Case, CaseEvent
from .uow import UnitOfWork


async def escalate(
    uow: UnitOfWork,
    case: Case,
    rules: EscalationRules,
    now: datetime,
    *,
    cause: str,
    facts: dict[str, Any],
    to_top: bool = False,
    actor: str = "minyi",
) -> CaseEvent | None:
    """One step up (none past the top level), or with `to_top` straight to the top (提级);
    `facts` say why (the deadline, the count, the filing)."""
    # Re-read under the row lock: another worker may have raised it meanwhile (what this unit
    # of work changed is written first, or the re-read would drop it).
    await uow.session.flush()
    await uow.session.refresh(case, with_for_update=True)
    new = rules.next_level(case.level or 0)
    if to_top and new is not None:
        new = rules.top
    level = rules.level(new) if new is not None else None
    if new is None or level is None:
        return None
    before, case.level = case.level or 0, new
    data = {
        "level": new,
        "from": before,
        "level_name": level.name,
        "cause": cause,
        "targets": list(level.targets),
        **facts,
    }
    event = await uow.events.append(case, "escalated", actor, data, at=now)
    await uow.outbox.add(
        "case.updated",
        case.code,
        {
            "status": case.status,
            "level": new,
            "event": {"seq": event.seq, "type": "escalated", "at": uow.iso(now), **data},
        },
    )
    # A level is reached once per case (levels only rise), so the key is the level.
    await uow.notifications.add(
        f"staff:escalated:{case.code}:{new}", "staff", "escalated", case, data
    )
    return event
