"""The satisfaction survey's rules (回访): its scale, how long it stays open, and quiet hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class SurveyRules:
    scale: int = 3
    days: int = 7
    quiet_from: time | None = time(21)  # no survey SMS from … (MINYI_SURVEY_QUIET_HOURS)
    quiet_until: time | None = time(8)  # … until

    @classmethod
    def from_setting(cls, scale: int, days: int, quiet_hours: str) -> SurveyRules:
        if not quiet_hours:
            return cls(scale, days, None, None)
        start, end = (time.fromisoformat(part.strip()) for part in quiet_hours.split("-"))
        return cls(scale, days, start, end)

    def expires(self, opened_at: datetime) -> datetime:
        return opened_at + timedelta(days=self.days)

    def quiet_end(self, now: datetime, tz: tzinfo) -> datetime | None:
        """When the quiet hours that `now` falls in end; None when SMS may go out now."""
        if self.quiet_from is None or self.quiet_until is None:
            return None
        local = now.astimezone(tz)
        clock = local.time()
        start, end = self.quiet_from, self.quiet_until
        overnight = start > end
        inside = (clock >= start or clock < end) if overnight else (start <= clock < end)
        if not inside:
            return None
        day = local.date() + timedelta(days=1) if overnight and clock >= start else local.date()
        return datetime.combine(day, end, tzinfo=tz)
