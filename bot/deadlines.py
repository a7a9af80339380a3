"""Legal time limits of 《信访工作条例》 (2022), in the office's local calendar.

Art. 22/23: decide on acceptance and tell the petitioner within 15 days of receipt.
A limit "within N days" ends at the close of the Nth local day after the day of receipt.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

ACCEPTANCE_DAYS = 15


class LegalDeadlines:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def end_of_day_after(self, start: datetime, days: int) -> datetime:
        local_day = start.astimezone(self.tz).date() + timedelta(days=days)
        return datetime.combine(local_day, time(23, 59, 59), tzinfo=self.tz)

    def acceptance_due(self, submitted_at: datetime) -> datetime:
        return self.end_of_day_after(submitted_at, ACCEPTANCE_DAYS)
