"""件件可倒查: checking that each case's timeline is whole and unaltered (its hash chain)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import func, select

from .models import Case
from .timeline import ChainCheck
from .uow import Units

BATCH = 200


@dataclass(frozen=True)
class CaseCheck:
    code: str
    check: ChainCheck | None  # None: no case with this code


async def count_cases(units: Units) -> int:
    async with units() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Case)) or 0)


async def check_cases(units: Units, codes: list[str] | None = None) -> AsyncIterator[CaseCheck]:
    """Each named case's chain check (None when unknown), or every case's, oldest first, read in
    batches so that a million cases never sit in memory at once."""
    if codes:
        for code in codes:
            async with units() as uow:
                case = await uow.cases.by_code(code.upper())
                yield CaseCheck(code, await uow.events.verify(case) if case else None)
        return
    after = 0
    while True:
        async with units() as uow:
            cases = list(
                await uow.session.scalars(
                    select(Case).where(Case.id > after).order_by(Case.id).limit(BATCH)
                )
            )
            checks = [CaseCheck(case.code, await uow.events.verify(case)) for case in cases]
            after = cases[-1].id if cases else after
        if not checks:
            return
        for each in checks:
            yield each
