"""Legal time limits of 《信访工作条例》 (2022) and local SLA stages, in the office's calendar.

- Art. 22/23: decide on acceptance and tell the petitioner within 15 days of receipt.
- Art. 34: finish within 60 days of acceptance; one extension of at most 30 days, with a reason.
- Art. 35: a review (复查) may be requested within 30 days of the written reply, and is decided
  within 30 days of the request.

The regulation's "日" are calendar days; a limit "within N days" ends at the close of the Nth
local day after the day of the event (the day itself is not counted). Local stages such as
1-2-3 usually count working days: weekends and the holiday list are skipped, and weekend days
worked instead (调休) count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from conversation.office import DeadlineRules, SlaStage

ACCEPTANCE_DAYS = 15
FINISH_DAYS = 60
MAX_EXTENSION_DAYS = 30
REVIEW_REQUEST_DAYS = 30
REVIEW_DECISION_DAYS = 30


@dataclass(frozen=True)
class Due:
    """One deadline a case is under now: what (`accept`, `finish`, `review`, `stage:<name>`) and when."""

    kind: str
    due_at: datetime


class LegalDeadlines:
    def __init__(self, tz: tzinfo, rules: DeadlineRules | None = None) -> None:
        self.tz = tz
        self.rules = rules or DeadlineRules()

    # -- counting days -----------------------------------------------------------------------

    def end_of_day_after(self, start: datetime, days: int) -> datetime:
        return self._end_of(start.astimezone(self.tz).date() + timedelta(days=days))

    def end_of_working_day_after(self, start: datetime, days: int) -> datetime:
        day = start.astimezone(self.tz).date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return self._end_of(day)

    def is_working_day(self, day: date) -> bool:
        if day in self.rules.workdays:
            return True
        return day.weekday() < 5 and day not in self.rules.holidays

    def _end_of(self, day: date) -> datetime:
        return datetime.combine(day, time(23, 59, 59), tzinfo=self.tz)

    # -- the law ------------------------------------------------------------------------------

    def acceptance_due(self, submitted_at: datetime) -> datetime:
        return self.end_of_day_after(submitted_at, ACCEPTANCE_DAYS)

    def finish_due(self, accepted_at: datetime) -> datetime:
        return self.end_of_day_after(accepted_at, FINISH_DAYS)

    def review_request_until(self, replied_at: datetime) -> datetime:
        return self.end_of_day_after(replied_at, REVIEW_REQUEST_DAYS)

    def review_decision_due(self, requested_at: datetime) -> datetime:
        return self.end_of_day_after(requested_at, REVIEW_DECISION_DAYS)

    def extended(self, finish_due: datetime, days: int) -> datetime:
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise ValueError(f"an extension is 1 to {MAX_EXTENSION_DAYS} days")
        return finish_due + timedelta(days=days)

    # -- local stages --------------------------------------------------------------------------

    def stages_from(self, anchor: str, at: datetime) -> list[dict[str, Any]]:
        """The stages that start counting when a case reaches `anchor` status at `at`."""
        return [
            {"name": stage.name, "due_at": self.stage_due(stage, at).isoformat(), "met_at": None}
            for stage in self.rules.stages
            if stage.anchor == anchor
        ]

    def stage_due(self, stage: SlaStage, start: datetime) -> datetime:
        if stage.working_days:
            return self.end_of_working_day_after(start, stage.days)
        return self.end_of_day_after(start, stage.days)

    @property
    def warn_before(self) -> timedelta:
        return timedelta(hours=self.rules.warn_before_hours)
