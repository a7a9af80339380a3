"""The measures' counts for cases filed in a period, in one aggregate query per grouping:
what storage/measures.py adds up live, and what storage/rollup.py keeps per day.

Each count is a `COUNT(*) FILTER (WHERE …)` over the cases filed in [start, end), so
the database reads every case of the period once, whatever the grouping. The rules of what
counts are docs/measures.md; the rates and the ranking are conversation/cases/measures.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Interval,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.cases.kinds import SUGGESTION
from conversation.cases.measures import Counts

from .models import Case, CaseCoDepartment

GROUPINGS = ("department", "category", "week", "channel")


@dataclass
class Measured:
    total: Counts = field(default_factory=Counts)
    groups: dict[str, Counts] = field(default_factory=dict)


def week_starts(first: date, last: date, tz: tzinfo) -> list[tuple[date, datetime]]:
    """The local Mondays of the weeks touching [first, last], with the instant each begins."""
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append((monday, datetime.combine(monday, time(0), tz)))
        monday += timedelta(days=7)
    return weeks


def _week_key(weeks: Sequence[tuple[date, datetime]], tz: tzinfo, dialect: str) -> Any:
    """The local Monday (ISO date) of a case's filing."""
    if dialect == "postgresql" and isinstance(tz, ZoneInfo):
        # Arithmetic on the row, in the office's zone (daylight saving included), instead of
        # a comparison per week: a year's CASE has 52 branches to try for every case.
        # A local timestamp comes back; `_key` makes it the Monday's ISO date.
        return func.date_trunc("week", func.timezone(tz.key, Case.created_at))
    whens = [
        (Case.created_at < following, monday.isoformat())
        for (monday, _), (_, following) in pairwise(weeks)
    ]
    last_week = weeks[-1][0].isoformat()
    return case(*whens, else_=last_week) if whens else literal(last_week)


def _conditions(now: datetime, repeat_days: int, dialect: str) -> dict[str, ColumnElement[bool]]:
    petition = Case.kind != SUGGESTION.name
    suggestion = Case.kind == SUGGESTION.name
    closed = and_(petition, Case.closed_at.is_not(None))
    scale = func.coalesce(Case.rating_scale, 3)
    # conversation/rating.py `is_unhappy`: 不满意 on three levels, the two lowest on five.
    unhappy = or_(
        and_(scale == 3, Case.rating_score == 3), and_(scale != 3, Case.rating_score >= 4)
    )
    rated = and_(closed, Case.rating_score.is_not(None))
    if dialect == "sqlite":
        # SQLite keeps these columns as text in UTC, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        window_end: Any = func.strftime("%Y-%m-%d %H:%M:%f", Case.closed_at, f"+{repeat_days} days")
    else:
        window_end = Case.closed_at + cast(literal(f"{repeat_days} days"), Interval)
    # The repeat watch writes when the matter was next filed on each earlier filing.
    came_back = and_(Case.refiled_at.is_not(None), Case.refiled_at <= window_end)
    return {
        "cases": literal(True),
        "petitions": petition,
        "closed": closed,
        "rated": rated,
        "satisfied": and_(rated, not_(unhappy)),
        "acceptance_due": and_(
            petition,
            Case.accept_due_at.is_not(None),
            or_(Case.decided_at.is_not(None), Case.accept_due_at < now),
        ),
        "accepted_on_time": and_(petition, Case.decided_at <= Case.accept_due_at),
        "reply_due": and_(
            petition,
            or_(
                and_(Case.first_replied_at.is_not(None), Case.first_reply_due_at.is_not(None)),
                and_(Case.first_replied_at.is_(None), Case.finish_due_at < now),
            ),
        ),
        "replied_on_time": and_(petition, Case.first_replied_at <= Case.first_reply_due_at),
        "resolved_first_time": and_(
            closed,
            Case.review_requested_at.is_(None),
            or_(Case.rating_score.is_(None), not_(unhappy)),
            not_(came_back),
        ),
        "repeat_checked": and_(petition, Case.repeat_checked_at.is_not(None)),
        "repeats": and_(petition, Case.repeat_checked_at.is_not(None), Case.repeat_of.is_not(None)),
        "suggestions_received": suggestion,
        "suggestions_adopted": and_(suggestion, Case.outcome == "adopted"),
        "suggestions_partly_adopted": and_(suggestion, Case.outcome == "partly"),
        "suggestions_not_adopted": and_(suggestion, Case.outcome == "not_adopted"),
    }


def _sums(now: datetime, repeat_days: int, dialect: str) -> list[Any]:
    # COUNT(*) FILTER (WHERE …): a quarter cheaper than SUM(CASE …) on PostgreSQL; SQLite has
    # it since 3.30.
    conditions = _conditions(now, repeat_days, dialect)
    return [func.count().filter(cond).label(name) for name, cond in conditions.items()]


def filed_in(ranges: Sequence[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    """Filed in any of the [start, end) ranges."""
    return or_(*(and_(Case.created_at >= a, Case.created_at < b) for a, b in ranges))


def co_handled_only(codes: frozenset[str]) -> ColumnElement[bool]:
    """Co-handled by a unit of `codes` but led by none of them (each case once).

    A subtree's cases are those led by one of its units (summed from the lead rows) and these:
    a query over the co-handled cases rather than another pass over all of them."""
    co = select(CaseCoDepartment.case_id).where(CaseCoDepartment.department.in_(sorted(codes)))
    return and_(Case.department.not_in(sorted(codes)), Case.id.in_(co))


async def live(
    session: AsyncSession,
    result: Measured,
    ranges: Sequence[tuple[datetime, datetime]],
    start: datetime,
    end: datetime,
    by: str,
    now: datetime,
    repeat_days: int,
    tz: tzinfo,
    subtrees: Mapping[str, frozenset[str]],
) -> None:
    """Adds the counts of the cases filed in `ranges` (parts of [start, end)) to `result`."""
    dialect = session.get_bind().dialect.name
    sums = _sums(now, repeat_days, dialect)
    filed = filed_in(ranges)
    if by == "week":
        last_instant = end - timedelta(microseconds=1)
        weeks = week_starts(start.astimezone(tz).date(), last_instant.astimezone(tz).date(), tz)
        key: Any = _week_key(weeks, tz, dialect)
    elif by in ("department", "category", "channel"):
        key = getattr(Case, by)
    else:
        key = literal("")
    query = select(key.label("key"), *sums).where(filed)
    rows = (await session.execute(query.group_by(key) if by else query)).all()
    led: dict[str, Counts] = {}
    for row in rows:
        counts = _counts(row)
        result.total.add(counts)
        if by == "department":
            led.setdefault(_key(row.key), Counts()).add(counts)
        if by and not (by == "department" and _key(row.key) in subtrees):
            result.groups.setdefault(_key(row.key), Counts()).add(counts)
    if by == "department":
        co = (
            await session.execute(
                select(CaseCoDepartment.department.label("key"), *sums)
                .join(Case, Case.id == CaseCoDepartment.case_id)
                .where(filed)
                .group_by(CaseCoDepartment.department)
            )
        ).all()
        for row in co:
            if row.key not in subtrees:
                result.groups.setdefault(row.key, Counts()).add(_counts(row))
        for unit, codes in subtrees.items():
            whole = result.groups.setdefault(unit, Counts())
            for code in codes:
                whole.add(led.get(code, Counts()))
            extra = await session.execute(select(*sums).where(filed, co_handled_only(codes)))
            whole.add(_counts(extra.one()))


def _key(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value or ""


def _counts(row: Any) -> Counts:
    return Counts(**{item.name: int(getattr(row, item.name) or 0) for item in fields(Counts)})
