"""Satisfaction surveys (回访) as rows: opened when a case closes, found, expired.

The citizen's own channel asks at once; an SMS goes to the mobile on file too, outside quiet
hours. Whichever answer comes first counts; the other route is then not asked again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from conversation.cases.surveys import SurveyRules

from .models import Case, Survey, utcnow
from .uow import UnitOfWork


async def start_survey(
    uow: UnitOfWork, case: Case, rules: SurveyRules, now: datetime
) -> Survey | None:
    """One open survey per case: a second close (after a review) opens a new one only when the
    first was answered or expired."""
    if await open_survey(uow, case) is not None:
        return None
    _, phone = uow.cases.contact(case)
    survey = Survey(
        case_id=case.id,
        status="open",
        scale=rules.scale,
        created_at=now,
        expires_at=rules.expires(now),
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


async def open_survey(uow: UnitOfWork, case: Case) -> Survey | None:
    """The case's survey still waiting for an answer, if any."""
    return await uow.session.scalar(
        select(Survey)
        .where(Survey.case_id == case.id, Survey.status == "open")
        .order_by(Survey.id.desc())
    )


async def expire_surveys(uow: UnitOfWork, now: datetime | None = None) -> int:
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
