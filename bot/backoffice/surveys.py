"""Satisfaction surveys (回访): opened when a case closes, asked in the chat and by SMS, expired.

The citizen's own channel asks at once; an SMS goes to the mobile on file too, outside quiet
hours. Whichever answer comes first counts; the other route is then not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from sqlalchemy import select

from storage.models import Case, Survey, utcnow
from storage.uow import UnitOfWork


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


async def open_survey(
    uow: UnitOfWork, case: Case, rules: SurveyRules, now: datetime
) -> Survey | None:
    """One open survey per case: a second close (after a review) opens a new one only when the
    first was answered or expired."""
    existing = await uow.session.scalar(
        select(Survey).where(Survey.case_id == case.id, Survey.status == "open")
    )
    if existing is not None:
        return None
    _, phone = uow.cases.contact(case)
    survey = Survey(
        case_id=case.id,
        status="open",
        scale=rules.scale,
        created_at=now,
        expires_at=now + timedelta(days=rules.days),
        phone_hash=uow.cipher.phone_hash(phone) if phone else None,
    )
    uow.session.add(survey)
    await uow.session.flush()
    await uow.notifications.add(
        f"citizen:survey:{survey.id}", "citizen", "survey", case, {"survey": survey.id}
    )
    if phone:
        await uow.notifications.add(
            f"citizen:survey_sms:{survey.id}", "citizen", "survey_sms", case, {"survey": survey.id}
        )
    return survey


async def expire(uow: UnitOfWork, now: datetime | None = None) -> int:
    now = now or utcnow()
    surveys = list(
        await uow.session.scalars(
            select(Survey).where(Survey.status == "open", Survey.expires_at <= now)
        )
    )
    for survey in surveys:
        survey.status = "expired"
        case = await uow.session.get(Case, survey.case_id)
        if case is not None:
            await uow.events.append(case, "survey.expired", "minyi", {"survey": survey.id})
    return len(surveys)
