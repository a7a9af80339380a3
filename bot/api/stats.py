"""The measures offices are judged by, for cases filed in a period, overall or by a dimension.

- 满意率 (satisfaction rate): satisfied ratings (满意 + 基本满意; on five levels also 非常满意)
  among answered surveys.
- Response rate: answered surveys among surveys sent.
- 按期办结率 (on-time closure rate): cases closed by their finish deadline among cases closed.
- 重复信访率 (repeat-petition rate): cases whose citizen (same mobile number) had filed an earlier
  case in the same category, among cases with a known citizen.

Suggestions (人民建议) are counted apart: `suggestions_received`, and by their outcome
`suggestions_adopted` (采纳), `suggestions_partly_adopted` (部分采纳) and `suggestions_not_adopted`
(未采纳). They are not surveyed and have no finish deadline, so they count in neither 满意率 nor
the on-time measures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from conversation.cases.kinds import SUGGESTION, kind_of
from conversation.rating import is_unhappy
from storage.models import Case, Survey
from storage.uow import UnitOfWork

DIMENSIONS = ("category", "department", "channel")


@dataclass
class Tally:
    cases: int = 0
    closed: int = 0
    closed_on_time: int = 0
    surveys: int = 0
    answered: int = 0
    satisfied: int = 0
    with_citizen: int = 0
    repeat: int = 0
    suggestions_received: int = 0
    suggestions_adopted: int = 0
    suggestions_partly_adopted: int = 0
    suggestions_not_adopted: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "satisfaction_rate": _rate(self.satisfied, self.answered),
            "response_rate": _rate(self.answered, self.surveys),
            "on_time_rate": _rate(self.closed_on_time, self.closed),
            "repeat_rate": _rate(self.repeat, self.with_citizen),
        }


@dataclass
class Report:
    total: Tally = field(default_factory=Tally)
    groups: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def report(uow: UnitOfWork, start: datetime, end: datetime, by: str = "") -> Report:
    cases = list(
        await uow.session.scalars(
            select(Case).where(Case.created_at >= start, Case.created_at < end)
        )
    )
    surveys = await _surveys_per_case(uow, [c.id for c in cases])
    repeats = await _repeats(uow, cases)
    result = Report()
    for case in cases:
        tallies = [result.total]
        if by:
            tallies.append(result.groups[getattr(case, by) or ""])
        for tally in tallies:
            _count(tally, case, surveys.get(case.id, 0), case.id in repeats)
    return result


def _count(tally: Tally, case: Case, surveys: int, repeat: bool) -> None:
    tally.cases += 1
    kind = kind_of(case.kind)
    if case.kind == SUGGESTION.name:
        tally.suggestions_received += 1
        tally.suggestions_adopted += case.outcome == "adopted"
        tally.suggestions_partly_adopted += case.outcome == "partly"
        tally.suggestions_not_adopted += case.outcome == "not_adopted"
    if kind.timed and case.closed_at is not None:
        tally.closed += 1
        if case.finish_due_at is not None and case.closed_at <= case.finish_due_at:
            tally.closed_on_time += 1
    if kind.surveyed:
        tally.surveys += surveys
        if case.rating_score is not None:
            tally.answered += 1
            if not is_unhappy(case.rating_scale or 3, case.rating_score):
                tally.satisfied += 1
    if case.citizen_id is not None:
        tally.with_citizen += 1
        tally.repeat += int(repeat)


async def _surveys_per_case(uow: UnitOfWork, case_ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for chunk in _chunks(case_ids, 500):
        rows = await uow.session.execute(
            select(Survey.case_id, func.count())
            .where(Survey.case_id.in_(chunk))
            .group_by(Survey.case_id)
        )
        counts.update({case_id: int(n) for case_id, n in rows.all()})
    return counts


async def _repeats(uow: UnitOfWork, cases: list[Case]) -> set[int]:
    """Ids of cases whose citizen filed in the same category before (at any time)."""
    citizens = sorted({c.citizen_id for c in cases if c.citizen_id is not None})
    first: dict[tuple[int, str], datetime] = {}
    for chunk in _chunks(citizens, 500):
        rows = await uow.session.execute(
            select(Case.citizen_id, Case.category, func.min(Case.created_at))
            .where(Case.citizen_id.in_(chunk))
            .group_by(Case.citizen_id, Case.category)
        )
        for citizen_id, category, earliest in rows.all():
            if citizen_id is not None:
                first[(citizen_id, category)] = earliest
    repeats = set()
    for case in cases:
        if case.citizen_id is None:
            continue
        found = first.get((case.citizen_id, case.category))
        if found is not None and found < case.created_at:
            repeats.add(case.id)
    return repeats


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
