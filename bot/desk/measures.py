"""The desk's statistics: the API's measures (bot/api/stats.py) by week and by department, in
whole local days, with the 红旗榜 (the top of the ranking) and the 蜗牛榜 (its bottom)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from bot.api.stats import Row, figures
from conversation.cases.measures import Counts
from conversation.office import OfficeConfig
from storage.models import utcnow
from storage.uow import UnitOfWork

LEAGUE_SIZE = 3


@dataclass
class Statistics:
    total: Counts = field(default_factory=Counts)
    weeks: list[tuple[date, Row]] = field(default_factory=list)
    departments: list[Row] = field(default_factory=list)
    red_flags: list[Row] = field(default_factory=list)
    snails: list[Row] = field(default_factory=list)


def league(departments: list[Row]) -> list[Row]:
    """The ranked units with cases of the one level of the tree the boards compare: the level
    with the most of them (the upper one on a tie), as a district alone is no league."""
    ranked = [row for row in departments if row.rank is not None and row.counts.cases]
    sizes: dict[int, int] = {}
    for row in ranked:
        sizes[row.level or 0] = sizes.get(row.level or 0, 0) + 1
    if not sizes:
        return []
    chosen = max(sizes, key=lambda depth: (sizes[depth], -depth))
    return sorted((r for r in ranked if (r.level or 0) == chosen), key=lambda r: r.rank or 0)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


async def statistics(
    uow: UnitOfWork, first: date, last: date, tz: tzinfo, office: OfficeConfig
) -> Statistics:
    """Cases filed from `first` to `last` (whole local days)."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    now = utcnow()
    total, weeks = await figures(uow, start, end, "week", office=office, tz=tz, now=now)
    _, departments = await figures(uow, start, end, "department", office=office, tz=tz, now=now)
    ranked = league(departments)
    red = ranked[:LEAGUE_SIZE]
    snails = [row for row in reversed(ranked) if row not in red][:LEAGUE_SIZE]
    return Statistics(
        total=total,
        weeks=[(date.fromisoformat(row.key), row) for row in weeks],
        departments=[row for row in departments if row.counts.cases],
        red_flags=red,
        snails=snails,
    )
