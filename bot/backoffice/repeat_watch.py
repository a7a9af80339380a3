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

# Cases compared in one transaction. On SQLite the transaction holds the one connection every
# turn waits for (about 0.7 ms a case): a batch of 200 held citizens' replies for 140 ms.
BATCH = 200
BATCH_SQLITE = 25


async def scan(
    units: Callable[[], UnitOfWork],
    rules: RepeatRules,
    escalation: EscalationRules,
    now: datetime | None = None,
    batch: int = BATCH,
) -> int:
    """Compare every case not compared yet, oldest first, `batch` to a transaction (the
    connection is let go between them); the number linked as repeats. All of them, not one
    batch a run: a busy day files more cases between two runs than one batch holds."""
    now = now or utcnow()
    linked = 0
    while True:
        async with units() as uow:
            # Several workers share the queue: each takes rows the others have not locked.
            cases = list(
                await uow.session.scalars(
                    select(Case)
                    .where(Case.repeat_checked_at.is_(None))
                    .order_by(Case.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for case in cases:
                if await link_repeat(uow, case, rules, escalation, now, similarity) is not None:
                    linked += 1
            await uow.commit()
        if len(cases) < batch:
            return linked
