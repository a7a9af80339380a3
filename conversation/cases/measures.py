"""The six measures an office is judged by, as counts and rates, and the 红旗榜 order of rows.

Which case counts where is written in docs/measures.md and computed by storage/measures.py;
this module holds what is the same wherever the counts come from: each measure's numerator
and denominator, the rate (none when the denominator is 0), and the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Measure:
    name: str  # the field in the API and the CSV, e.g. satisfaction_rate
    numerator: str
    denominator: str
    higher_is_better: bool = True


MEASURES = (
    Measure("satisfaction_rate", "satisfied", "rated"),  # 满意率
    Measure("participation_rate", "rated", "closed"),  # 参评率
    Measure("on_time_acceptance_rate", "accepted_on_time", "acceptance_due"),  # 及时受理率
    Measure("on_time_reply_rate", "replied_on_time", "reply_due"),  # 按期答复率
    Measure("first_time_resolution_rate", "resolved_first_time", "closed"),  # 一次性化解率
    Measure("repeat_rate", "repeats", "repeat_checked", higher_is_better=False),  # 重复信访率
)
# The 红旗榜 compares rows on these, in this order; the first difference decides.
RANKED_BY = (
    "satisfaction_rate",
    "on_time_reply_rate",
    "on_time_acceptance_rate",
    "first_time_resolution_rate",
    "repeat_rate",
)


@dataclass
class Counts:
    """What one row (the whole period, a department, a category, a week) counted."""

    cases: int = 0
    petitions: int = 0
    closed: int = 0
    rated: int = 0
    satisfied: int = 0
    acceptance_due: int = 0
    accepted_on_time: int = 0
    reply_due: int = 0
    replied_on_time: int = 0
    resolved_first_time: int = 0
    repeat_checked: int = 0
    repeats: int = 0
    suggestions_received: int = 0
    suggestions_adopted: int = 0
    suggestions_partly_adopted: int = 0
    suggestions_not_adopted: int = 0

    def add(self, other: Counts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def rate(self, name: str) -> float | None:
        measure = next(m for m in MEASURES if m.name == name)
        return rate(getattr(self, measure.numerator), getattr(self, measure.denominator))

    def rates(self) -> dict[str, float | None]:
        return {m.name: self.rate(m.name) for m in MEASURES}

    def to_json(self) -> dict[str, Any]:
        """The counts, each rate, and each measure with its numerator and denominator."""
        return {
            **{item.name: getattr(self, item.name) for item in fields(self)},
            **self.rates(),
            "measures": {
                m.name: {
                    "numerator": getattr(self, m.numerator),
                    "denominator": getattr(self, m.denominator),
                    "rate": self.rate(m.name),
                }
                for m in MEASURES
            },
        }


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def standing(counts: Counts) -> tuple[float, ...]:
    """Smaller is better. A measure with no denominator ranks below every measured one."""
    key: list[float] = []
    for name in RANKED_BY:
        value = counts.rate(name)
        higher = next(m for m in MEASURES if m.name == name).higher_is_better
        if value is None:
            key.append(2.0)
        else:
            key.append(-value if higher else value)
    return tuple(key)


def ranks(rows: Sequence[Counts]) -> list[int]:
    """红旗榜 places of `rows` (1 = best), in their order. Rows equal on every ranked measure
    share a place and the next place is skipped (1, 2, 2, 4): a tie is never broken by chance
    or by how many cases a row had."""
    keys = [standing(row) for row in rows]
    return [1 + sum(1 for other in keys if other < key) for key in keys]
