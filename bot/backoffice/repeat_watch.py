"""The repeat watch: each newly filed case compared, once, with the same person's earlier ones
(重复信访), linked when it is the same matter, and the `raise_at`-th filing raised (提级)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from conversation.cases.escalation import EscalationRules
from conversation.cases.repeats import RepeatRules
from conversation.similarity import similarity
from storage.models import Case, utcnow
from storage.repeats import link_repeat
from storage.uow import UnitOfWork

BATCH = 200


async def scan(
    units: Callable[[], UnitOfWork],
    rules: RepeatRules,
    escalation: EscalationRules,
    now: datetime | None = None,
) -> int:
    """Compare the cases not compared yet, oldest first; the number linked as repeats."""
    now = now or utcnow()
    async with units() as uow:
        # Several workers share the queue: each takes rows the others have not locked.
        cases = await uow.session.scalars(
            select(Case)
            .where(Case.repeat_checked_at.is_(None))
            .order_by(Case.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        linked = 0
        for case in list(cases):
            if await link_repeat(uow, case, rules, escalation, now, similarity) is not None:
                linked += 1
        await uow.commit()
    return linked
