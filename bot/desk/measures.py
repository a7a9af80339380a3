"""The desk's statistics: the office's measures by week and by department, and the league table.

The measures themselves come from `bot/api/stats.py` (`report`); this adds what the desk needs
beside them: weeks in the office's time zone (a week without cases is there, with no rate), 及时受理率
(decision on acceptance by its legal deadline) and the 红旗榜 / 蜗牛榜 order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import func, select

from bot.api.stats import Tally, report
from storage.models import Case, CaseEvent, utcnow
from storage.uow import UnitOfWork

LEAGUE_SIZE = 3


@dataclass
class Row:
    """One line of figures: a week or a department."""

    key: str
    tally: Tally
    accepted_on_time: int = 0
    acceptance_due: int = 0  # decided, or past the deadline undecided

    @property
    def on_time_acceptance_rate(self) -> float | None:
        return (
            round(self.accepted_on_time / self.acceptance_due, 4) if self.acceptance_due else None
        )

    def measures(self) -> dict[str, float | None]:
        figures = self.tally.to_json()
        return {
            "satisfaction": figures["satisfaction_rate"],
            "on_time_acceptance": self.on_time_acceptance_rate,
            "on_time_closure": figures["on_time_rate"],
            "repeat": figures["repeat_rate"],
        }


@dataclass
class Statistics:
    weeks: list[tuple[date, Row]] = field(default_factory=list)
    departments: list[Row] = field(default_factory=list)
    red_flags: list[Row] = field(default_factory=list)
    snails: list[Row] = field(default_factory=list)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


async def statistics(uow: UnitOfWork, first: date, last: date, tz: tzinfo) -> Statistics:
    """Cases filed from `first` to `last` (whole local days)."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    result = Statistics()
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        week_start = max(local_midnight(monday, tz), start)
        week_end = min(local_midnight(monday + timedelta(days=7), tz), end)
        totals = await report(uow, week_start, week_end)
        timely = await _acceptance(uow, week_start, week_end, by_department=False)
        result.weeks.append(
            (monday, Row(monday.isoformat(), totals.total, *timely.get("", (0, 0))))
        )
        monday += timedelta(days=7)
    grouped = await report(uow, start, end, "department")
    timely = await _acceptance(uow, start, end, by_department=True)
    result.departments = [
        Row(key, tally, *timely.get(key, (0, 0))) for key, tally in sorted(grouped.groups.items())
    ]
    ranked = sorted((r for r in result.departments if r.key), key=_standing)
    result.red_flags = ranked[:LEAGUE_SIZE]
    result.snails = [r for r in reversed(ranked) if r not in result.red_flags][:LEAGUE_SIZE]
    return result


def _standing(row: Row) -> tuple[float, float, int]:
    """Best first: satisfaction, then closure on time, then more cases handled; none = worst."""
    figures = row.measures()
    return (
        -(figures["satisfaction"] if figures["satisfaction"] is not None else -1.0),
        -(figures["on_time_closure"] if figures["on_time_closure"] is not None else -1.0),
        -row.tally.cases,
    )


async def _acceptance(
    uow: UnitOfWork, start: datetime, end: datetime, *, by_department: bool
) -> dict[str, tuple[int, int]]:
    """Per group: (decided on acceptance by the deadline, decisions due so far)."""
    decided = (
        select(CaseEvent.case_id, func.min(CaseEvent.at).label("at"))
        .where(CaseEvent.type.in_(("accepted", "redirected")))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    rows = await uow.session.execute(
        select(Case.department, Case.accept_due_at, decided.c.at)
        .outerjoin(decided, decided.c.case_id == Case.id)
        .where(Case.created_at >= start, Case.created_at < end, Case.accept_due_at.is_not(None))
    )
    now = utcnow()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for department, due, decided_at in rows.all():
        if decided_at is None and due >= now:
            continue  # still within its 15 days: neither on time nor late yet
        tally = counts[department if by_department else ""]
        tally[1] += 1
        if decided_at is not None and _aware(decided_at) <= due:
            tally[0] += 1
    return {key: (on_time, due) for key, (on_time, due) in counts.items()}


def _aware(moment: datetime) -> datetime:
    # An aggregate over a UTC column comes back naive from SQLite.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
