"""Telling citizens about their case (受理, 答复, 办结 …), asking for their rating, and carrying a
staff member's words to them — on their own channel, falling back as the channels declare.

A notice is read in a short transaction, sent outside any transaction, and then recorded: every
attempt lands on the case timeline. A route that fails for a passing reason makes the job wait
and retry with back-off; after the last try the timeline records `notification.failed` and staff
are told.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from channels.base import Notice, Recipient
from conversation.catalog import Catalog
from conversation.messages import Reply
from storage.filing import INTAKE_CHANNELS
from storage.models import Case, Citizen, Identity, Notification, StaffThread, Survey, utcnow
from storage.uow import UnitOfWork, Units

from .reach import Attempt, CitizenReach
from .recording import record_surely
from .sms_conversation import route_of

log = logging.getLogger(__name__)

# A staff member's words: in the chat if it can take them, else by SMS — a person's words must
# arrive — but never as a template message, which cannot carry them.
STAFF_WORDS = frozenset({"staff.joined", "staff.says", "staff.left"})


class NotSent(Exception):
    """A notice failed before anything went out (reading it: the database went away), so it
    may be given back at once; any later failure may come after the send and must not be."""


@dataclass(frozen=True)
class _Reading:
    """What a job needs, read in its short transaction, usable after it."""

    recipient: Recipient
    case_code: str
    language: str
    replies: list[Reply]
    fields: dict[str, str]


class CitizenNotices:
    def __init__(
        self,
        units: Units,
        reach: CitizenReach,
        catalog: Catalog,
        tz: tzinfo,
        *,
        invitation: Callable[[str, str], list[Reply]],
        expect_rating: Callable[[str, str, str, str], Awaitable[None]],
        hotline: str = "12345",
    ) -> None:
        self.units = units
        self.hotline = hotline  # where a citizen on SMS, who cannot ask for a person, can call
        self.reach = reach
        self.catalog = catalog
        self.tz = tz
        self.invitation = invitation  # the survey question as the chat asks it
        self.expect_rating = expect_rating  # the chat's next "1" answers the survey

    async def send(self, job_id: int) -> None:
        """A notice through the citizen's channels (SMS-only jobs go by `sms_notices.py`)."""
        try:
            prepared = await self._prepare(job_id)
        except Exception as exc:
            raise NotSent(job_id) from exc
        if prepared is not None:
            await self._deliver(job_id, *prepared)

    async def _prepare(self, job_id: int) -> tuple[_Reading, str, bool, bool] | None:
        """What to send and how, read in one short transaction; None when there is nothing."""
        survey_topic = False
        async with self.units() as uow:
            job = await uow.notifications.get(job_id)
            if job is None:
                return None
            survey_topic = job.topic == "survey"
            if survey_topic and not await _survey_open(uow, job):
                uow.notifications.skipped(
                    job, "the survey was answered or expired before it was asked"
                )
                await uow.commit()
                return None
            reading = await self._read(uow, job)
            key, staff_words = job.key, job.topic in STAFF_WORDS
        if reading is None:
            return None
        return reading, key, survey_topic, staff_words

    async def _deliver(
        self, job_id: int, reading: _Reading, key: str, survey_topic: bool, staff_words: bool
    ) -> None:
        routes = self.reach.routes(
            reading.recipient,
            chat_only=survey_topic or staff_words,
            fallback=not survey_topic,
        )
        if not routes and reading.recipient.channel in INTAKE_CHANNELS:
            # Filed for the citizen by another system and no phone route to them: nobody can be
            # told, and staff have nothing to put right, so the timeline says why and that is all.
            why = "no mobile number on file"
            if survey_topic:
                why = "no chat to ask in; the survey SMS asks instead"
            elif reading.recipient.phone:
                why = "SMS is off (MINYI_SMS_PROVIDER is not set)"
            await self._skip(job_id, why)
            return
        notice = Notice(reading.replies, key, reading.fields)
        attempts = await self.reach.reach(routes, notice)
        if survey_topic and attempts and attempts[-1].ok:
            # Only now that the question is on the citizen's screen does their next "1" mean 满意.
            recipient = reading.recipient
            try:
                await self.expect_rating(
                    recipient.channel, recipient.address, reading.case_code, reading.language
                )
            except Exception as exc:
                # The question went out and is recorded below either way: failing here used to
                # leave the job leased, to be asked again. Without the conversation store (Redis
                # down, the conversation busy) a "1" in the chat is not read as a rating; the
                # SMS survey and the menu's 评价 still are.
                log.warning(
                    "survey for %s asked, but the chat will not read the answer (%s: %s)",
                    reading.case_code,
                    type(exc).__name__,
                    exc,
                )
        await self._record(job_id, attempts, alert_staff=not survey_topic)

    async def _skip(self, job_id: int, why: str) -> None:
        async with self.units() as uow:
            job = await uow.notifications.get(job_id)
            assert job is not None and job.case_id is not None
            case = await uow.session.get(Case, job.case_id)
            assert case is not None
            uow.notifications.skipped(job, why)
            await uow.events.append(
                case, "notification.skipped", "minyi", {"topic": job.topic, "why": why}
            )
            await uow.commit()

    async def _read(self, uow: UnitOfWork, job: Notification) -> _Reading | None:
        case = await uow.session.get(Case, job.case_id) if job.case_id is not None else None
        thread_id = job.payload.get("thread")
        if thread_id is not None:
            thread = await uow.session.get(StaffThread, thread_id)
            if thread is None:
                return None
            channel, address = thread.channel, thread.external_id
            identity = await uow.people.find_identity(channel, address)
        elif case is not None:
            identity = await uow.session.get(Identity, case.identity_id)
            assert identity is not None
            channel, address = identity.channel, identity.external_id
        else:
            return None
        phone = uow.cases.contact(case)[1] if case is not None else ""
        citizen = (
            await uow.session.get(Citizen, case.citizen_id) if case and case.citizen_id else None
        )
        sms_allowed = not (citizen and citizen.sms_opted_out_at)
        if thread_id is not None and identity is not None and identity.phone_enc:
            # A conversation on SMS: staff answer the mobile that texted, whose words these
            # answer (as the bot's answers do, even after TD).
            phone, sms_allowed = route_of(uow, identity), True
        recipient = Recipient(
            channel=channel,
            address=address,
            phone=phone,
            chat_reachable=identity is None
            or (identity.unsubscribed_at is None and identity.unreachable_at is None),
            sms_allowed=sms_allowed,
        )
        language = case.language if case else (identity.language if identity else "zh")
        code = case.code if case else ""
        if job.topic == "survey":
            replies = self.invitation(code, language)
        else:
            replies = [Reply(self._text(job, case, language, channel))]
        fields = self._template_fields(job, case) if case is not None else {}
        return _Reading(recipient, code, language, replies, fields)

    def _text(self, job: Notification, case: Case | None, language: str, channel: str) -> str:
        """The citizen's message in their language, from the catalog (a channel's own wording
        where it has one: by SMS, "reply 人工" cannot reach a person)."""
        t = self.catalog.for_language(language)
        data = job.payload
        if job.topic in STAFF_WORDS:
            key = f"{job.topic}.{channel}"
            return t(
                key if self.catalog.has(key) else job.topic,
                name=data.get("staff", ""),
                text=data.get("text", ""),
                hotline=self.hotline,
            )
        assert case is not None
        due = (
            data.get("finish_by")
            or data.get("accept_by")
            or (case.finish_due_at.isoformat() if case.finish_due_at else "")
        )
        key = f"notify.{job.topic}"
        if self.catalog.has(f"{key}.{case.kind}"):
            key = f"{key}.{case.kind}"  # a suggestion's receipt promises no decision in 15 days
        return t(
            key,
            code=case.code,
            due=self._day(due, language),
            review=self._day(data.get("review_by", ""), language),
            reason=data.get("reason", ""),
            where=data.get("department", ""),
            note=data.get("note", ""),
            outcome=t(f"outcome.{data['outcome']}") if data.get("outcome") else "",
        )

    def _template_fields(self, job: Notification, case: Case) -> dict[str, str]:
        """The notice as a template message's fields (code, status, time, note); none for a
        notice that has no such form (a survey question, a staff member's words)."""
        if not self.catalog.has(f"template.status.{job.topic}"):
            return {}
        t = self.catalog.for_language("zh")
        data = job.payload
        note = data.get("note") or data.get("reason") or ""
        if job.topic in ("accepted", "extended"):
            finish = t("template.finish_by", due=self._day(data.get("finish_by", ""), "zh"))
            note = finish + (f"；{note}" if note else "")
        return {
            "code": case.code,
            "status": t(f"template.status.{job.topic}"),
            "time": utcnow().astimezone(self.tz).strftime("%Y-%m-%d %H:%M"),
            "note": note[:200],
        }

    def _day(self, iso: str, lang: str) -> str:
        if not iso:
            return ""
        local = datetime.fromisoformat(iso).astimezone(self.tz)
        return (
            f"{local.year}年{local.month}月{local.day}日" if lang == "zh" else f"{local:%Y-%m-%d}"
        )

    # -- recording the outcome -----------------------------------------------------------------

    async def _record(self, job_id: int, attempts: list[Attempt], *, alert_staff: bool) -> None:
        await record_surely(
            lambda: self._record_once(job_id, attempts, alert_staff=alert_staff),
            f"notification {job_id}",
        )

    async def _record_once(
        self, job_id: int, attempts: list[Attempt], *, alert_staff: bool
    ) -> None:
        async with self.units() as uow:
            job = await uow.notifications.get(job_id)
            assert job is not None
            case = (
                await uow.session.get(Case, job.case_id, with_for_update=uow.db.is_postgres)
                if job.case_id is not None
                else None
            )
            await settle(uow, job, case, attempts, alert_staff=alert_staff)
            await uow.commit()


async def settle(
    uow: UnitOfWork,
    job: Notification,
    case: Case | None,
    attempts: Sequence[Attempt],
    *,
    alert_staff: bool,
) -> None:
    """Record a job's attempts — on its case's timeline, which the caller holds (FOR UPDATE on
    PostgreSQL) — and what comes of them: sent, retried later, or given up (staff told)."""
    for attempt in attempts:
        await _record_attempt(uow, job, case, attempt)
    delivered = next((a for a in attempts if a.ok), None)
    if delivered is not None:
        uow.notifications.succeeded(job, delivered.route)
        if job.topic == "survey_sms" and (
            survey := await uow.session.get(Survey, job.payload.get("survey"))
        ):
            survey.sms_sent_at = utcnow()
    elif not attempts or all(a.unreachable for a in attempts):
        error = attempts[-1].error if attempts else "no route can reach the citizen"
        await _give_up(uow, job, case, error, alert_staff=alert_staff)
    else:
        last = attempts[-1]
        if not uow.notifications.retry_later(job, last.error, wait=_seconds(last.retry_after)):
            await _give_up(uow, job, case, last.error, alert_staff=alert_staff, counted=True)


async def _record_attempt(
    uow: UnitOfWork, job: Notification, case: Case | None, attempt: Attempt
) -> None:
    if attempt.ok and attempt.message_id:
        await uow.notifications.record_delivery(attempt.channel, attempt.message_id, job)
    if attempt.lasting and case is not None:
        identity = await uow.session.get(Identity, case.identity_id)
        if identity is not None and identity.channel == attempt.channel:
            identity.unreachable_at = utcnow()  # blocked: not tried first again
    if case is None:
        return
    if attempt.ok:
        data = {
            "topic": job.topic,
            "route": attempt.route,
            "message_id": attempt.message_id or "",
        }
        await uow.events.append(case, "notification.sent", "minyi", data)
    else:
        data = {"topic": job.topic, "route": attempt.route, "error": attempt.error[:300]}
        await uow.events.append(case, "notification.attempt_failed", "minyi", data)


async def _survey_open(uow: UnitOfWork, job: Notification) -> bool:
    survey = await uow.session.get(Survey, job.payload.get("survey"))
    return survey is not None and survey.status == "open"


async def _give_up(
    uow: UnitOfWork,
    job: Notification,
    case: Case | None,
    error: str,
    *,
    alert_staff: bool = True,
    counted: bool = False,
) -> None:
    if not counted:
        job.attempts += 1
    job.status, job.finished_at, job.leased_until, job.last_error = (
        "failed",
        utcnow(),
        None,
        error[:1000],
    )
    data = {"topic": job.topic, "error": error[:300]}
    if case is not None:
        await uow.events.append(case, "notification.failed", "minyi", data)
    if not alert_staff:
        return  # e.g. a survey the chat could not ask: its SMS asks instead
    payload = {**data, "thread": job.payload["thread"]} if "thread" in job.payload else data
    await uow.notifications.add(
        f"staff:notification.failed:{job.key}", "staff", "notification.failed", case, payload
    )


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None
