"""Legal time limits of 《信访工作条例》 (2022) and local stages, in the office's calendar.

- Art. 22/23: decide on acceptance and tell the petitioner within 15 days of receipt.
- Art. 34: finish within 60 days of acceptance; one extension of at most 30 days, with a reason.
- Art. 35: a review (复查) may be requested within 30 days of the written reply, and is decided
  within 30 days of the request.

The regulation's "日" are calendar days; a limit "within N days" ends at the close of the Nth
local day after the day of the event (the day itself is not counted). Local stages such as
1-2-3 usually count working days: weekends and the holiday list are skipped, and weekend days
worked instead (调休) count. A stage of 0 days ends with the same (working) day; one in hours
runs on the clock.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from .stages import DeadlineRules, SlaStage

ACCEPTANCE_DAYS = 15
FINISH_DAYS = 60
MAX_EXTENSION_DAYS = 30
REVIEW_REQUEST_DAYS = 30
REVIEW_DECISION_DAYS = 30
# A warning comes at most this share of a limit's whole span before its end. A fixed lead
# (48 h) is right for the law's 15 and 60 days but would page staff the moment a 1-day stage
# starts; a quarter leaves three quarters of any limit to work in peace and the last quarter
# to act on the warning: 6 h of a 1-day stage, the last hour of a 4-hour one, and the full
# configured lead for anything of 8 days or more.
WARNING_SHARE = 4


class LegalDeadlines:
    def __init__(self, tz: tzinfo, rules: DeadlineRules | None = None) -> None:
        self.tz = tz
        self.rules = rules or DeadlineRules()

    # -- counting days -----------------------------------------------------------------------

    def end_of_day_after(self, start: datetime, days: int) -> datetime:
        return self._end_of(start.astimezone(self.tz).date() + timedelta(days=days))

    def end_of_working_day_after(self, start: datetime, days: int) -> datetime:
        """The end of the `days`th working day after `start`'s day; for 0, of the same day, or
        of the next working day when `start` falls on a day off."""
        day = start.astimezone(self.tz).date()
        if days == 0:
            while not self.is_working_day(day):
                day += timedelta(days=1)
            return self._end_of(day)
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
        """The stages that start counting when a case reaches `anchor` status at `at`, as
        stored on the case."""
        return [
            {
                "name": stage.name,
                "due_at": self.stage_due(stage, at).isoformat(),
                "met_at": None,
                "anchor": anchor,
                "started_at": at.isoformat(),
            }
            for stage in self.rules.stages
            if stage.anchor == anchor
        ]

    def stage_due(self, stage: SlaStage, start: datetime) -> datetime:
        if stage.hours:
            return start + timedelta(hours=stage.hours)
        if stage.working_days:
            return self.end_of_working_day_after(start, stage.days)
        return self.end_of_day_after(start, stage.days)

    # -- warnings ------------------------------------------------------------------------------

    @property
    def warn_before(self) -> timedelta:
        """The configured lead (`warn_before_hours`): the most any warning comes ahead."""
        return timedelta(hours=self.rules.warn_before_hours)

    def warning_lead(self, span: timedelta | None) -> timedelta:
        """How long before its end a limit of this whole `span` warns (unknown: the full lead)."""
        if span is None:
            return self.warn_before
        return min(self.warn_before, span / WARNING_SHARE)
