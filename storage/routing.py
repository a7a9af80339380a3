"""Which departments handle a case: the lead one on the row, the co-handling ones (协办) beside
it, and the one condition — lead or co-handling — that lists a department's cases."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Case, CaseCoDepartment


def handled_by(department: str) -> ColumnElement[bool]:
    """The cases `department` leads or co-handles, as a WHERE condition."""
    return or_(
        Case.department == department,
        Case.id.in_(
            select(CaseCoDepartment.case_id).where(CaseCoDepartment.department == department)
        ),
    )


async def co_departments(session: AsyncSession, case: Case) -> list[str]:
    rows = await session.scalars(
        select(CaseCoDepartment.department)
        .where(CaseCoDepartment.case_id == case.id)
        .order_by(CaseCoDepartment.id)
    )
    return list(rows)


async def set_co_departments(session: AsyncSession, case: Case, codes: Sequence[str]) -> None:
    """Replace the case's co-handling departments (each 交办 names them afresh)."""
    await session.execute(delete(CaseCoDepartment).where(CaseCoDepartment.case_id == case.id))
    session.add_all(CaseCoDepartment(case_id=case.id, department=code) for code in codes)
    await session.flush()
