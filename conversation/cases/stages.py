"""The office's local time limits on top of the law (1-2-3, 当日受理, 四个当天), as declared.

The office file's `[deadlines]` table becomes `DeadlineRules`; `deadlines.LegalDeadlines`
counts them. A stage counts either days (0 = by the end of the same day; working days unless
`working_days = false`) or plain clock hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The statuses a stage may count from: each is where a case's stages are created — at filing
# (submitted) or when the back office accepts or assigns it. Stages end at the reply.
STAGE_ANCHORS = ("submitted", "accepted", "assigned")
MAX_STAGE_DAYS = 60
MAX_STAGE_HOURS = 72  # longer limits are written in days


@dataclass(frozen=True)
class SlaStage:
    """A local fast-track limit, e.g. 1-2-3's "contact within 1 working day of assignment"."""

    name: str
    days: int = 0  # 0: by the end of the same day (with `hours`, unused)
    working_days: bool = True
    anchor: str = "assigned"  # the status whose start the limit counts from
    hours: int = 0  # when set, the limit is this many clock hours and `days` is unused


@dataclass(frozen=True)
class DeadlineRules:
    """When to warn, the local stages, and the calendar for counting working days."""

    warn_before_hours: int = 48
    stages: tuple[SlaStage, ...] = ()
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # weekend days worked instead (调休)
