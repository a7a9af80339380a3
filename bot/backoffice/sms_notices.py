"""SMS-only notices many at a time: surveys by SMS, answers to a survey reply (an unhappy
rating's), 验证码, and the conversation's answers to a citizen's own texts.

A run's jobs are read in one transaction, as rows; their SMS go out side by side (one
mobile's, or one case's, in the order they were queued); each is recorded once it went out, many
to a transaction: a recorder writes, in one transaction, everything sent while it wrote the last
ones and in a short linger after the first of them. A message is recorded within one such
transaction of going out, as one alone was; the jobs keep their leases until then, so a worker
that dies before a send lets it come back whole, and the timeline, the delivery and the job's
state are written as one by one would (an SMS the provider took by a few statements for them
all, without ORM objects; anything else through `settle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from typing import Any

from sqlalchemy import Row, bindparam, select, update

from channels.base import Notice, PhoneTexting, Route
from conversation.cases.surveys import SurveyRules
from conversation.catalog import Catalog
from conversation.codes import short_reference
from conversation.messages import Reply
from conversation.survey_text import survey_sms
from storage.models import Case, Citizen, Notification, Survey, utcnow
from storage.notifications import table_of
from storage.proof import open_code
from storage.uow import UnitOfWork, Units

from .citizen_notices import NotSent, settle
from .reach import Attempt, CitizenReach
from .recording import record_surely
from .sms_conversation import open_answer

log = logging.getLogger(__name__)

# Survey SMS and SMS answering the citizen's own SMS: that route only, no chat, no fallback.
SMS_ONLY = frozenset({"survey_sms", "sms_followup", "proof_sms"})
# The conversation's answer to a citizen's own SMS (sms_conversation.py): to that mobile only.
SMS_ANSWER = "sms_answer"
TEXTED = SMS_ONLY | {SMS_ANSWER}
# SMS in flight at once: the provider's API answers each in tens of milliseconds; a slow one
# (10 s at most, channels/sms/common.py) holds up only its own mobile's or case's next one.
SENDING = 32
# How long the recorder lets outcomes gather before a transaction. The provider answers within
# milliseconds, so without it a run of 100 SMS was written in some 30 transactions of 3, each
# costing its statements' fixed CPU; with it, in 2 or 3. The record comes that much later,
# which only widens a crash's window for a second send from a few to some 20 ms (the lease
# is 120 s).
LINGER = 0.02


@dataclass(frozen=True)
class _Text:
    """One job's SMS, as read: the route (that mobile, that template) and what it carries."""

    route: Route
    notice: Notice


@dataclass(frozen=True)
class _NotNow:
    """A job sent nothing: skipped with the reason, or postponed until the quiet hours end."""

    why: str = ""
    until: datetime | None = None


_GONE = _NotNow()  # the job is no more: nothing to send or record


class SmsNotices:
    def __init__(
        self,
        units: Units,
        reach: CitizenReach,
        catalog: Catalog,
        tz: tzinfo,
        surveys: SurveyRules,
        phone: PhoneTexting | None,
    ) -> None:
        self.units = units
        self.reach = reach
        self.catalog = catalog
        self.tz = tz
        self.surveys = surveys
        self.phone = phone
        self.linger: Callable[[], Awaitable[None]] = partial(asyncio.sleep, LINGER)

    async def send(self, queues: Sequence[Sequence[int]]) -> None:
        """Send the jobs of each queue in its order, the queues side by side, and record each.

        Raises NotSent when reading them failed (nothing went out: the caller gives the leases
        back); a failure to record is raised after every other one was recorded."""
        ids = [job_id for queue in queues for job_id in queue]
        try:
            plans = await self._read(ids)
        except Exception as exc:
            raise NotSent(*ids) from exc
        unread = set(ids) - set(plans)
        sent: asyncio.Queue[tuple[int, list[Attempt]] | None] = asyncio.Queue()
        recording = asyncio.create_task(self._recorder(plans, sent))
        gate = asyncio.Semaphore(SENDING)

        async def in_order(queue: Sequence[int]) -> None:
            async with gate:
                for job_id in queue:
                    if job_id in unread:
                        return  # it and what follows it keep their leases, and come back
                    plan = plans[job_id]
                    if isinstance(plan, _Text):
                        sent.put_nowait((job_id, await self.reach.reach([plan.route], plan.notice)))
                    elif plan is not _GONE:
                        sent.put_nowait((job_id, []))  # skipped or postponed, in its turn

        try:
            await asyncio.gather(*(in_order(queue) for queue in queues))
        finally:
            sent.put_nowait(None)
            await recording

    # -- reading -------------------------------------------------------------------------------

    async def _read(self, job_ids: Sequence[int]) -> dict[int, _Text | _NotNow]:
        """Each job's SMS, or why it sends none, read in one transaction. A job that could not
        be read has none (it keeps its lease); raises when the reading itself failed.

        Rows, not ORM objects: the jobs with their cases' and citizens' few columns in one
        statement, their surveys' states in another (building a Case, its JSON decoded, for a
        code and a mobile was most of the reading)."""
        n, c, z = Notification, Case, Citizen
        async with self.units() as uow:
            jobs = {
                job.id: job
                for job in await uow.session.execute(
                    select(
                        n.id,
                        n.topic,
                        n.case_id,
                        n.payload,
                        c.id.label("case_found"),
                        c.code,
                        c.language,
                        c.contact_phone_enc,
                        z.sms_opted_out_at,
                    )
                    .outerjoin(c, c.id == n.case_id)
                    .outerjoin(z, z.id == c.citizen_id)
                    .where(n.id.in_(sorted(set(job_ids))))
                )
            }
            wanted = {j.payload.get("survey") for j in jobs.values()}
            surveys: dict[int, str] = {}
            if ids := sorted(i for i in wanted if isinstance(i, int)):
                found = await uow.session.execute(
                    select(Survey.id, Survey.status).where(Survey.id.in_(ids))
                )
                surveys = {row.id: row.status for row in found}
            plans: dict[int, _Text | _NotNow] = {}
            for job_id in job_ids:
                job = jobs.get(job_id)
                if job is None:
                    plans[job_id] = _GONE
                    continue
                try:
                    if job.topic == SMS_ANSWER:
                        plans[job_id] = self._answer(uow, job)
                        continue
                    if job.case_found is None:
                        raise LookupError(f"case {job.case_id} of notification {job_id}")
                    survey = surveys.get(job.payload.get("survey") or 0)
                    plans[job_id] = self._text(uow, job, survey)
                except Exception:
                    log.exception(
                        "SMS notification %s could not be read; tried again later", job_id
                    )
        return plans

    def _text(self, uow: UnitOfWork, job: Row[Any], survey: str | None) -> _Text | _NotNow:
        """A survey SMS, an answer to a survey reply, a 验证码: to the case's mobile only. `job`
        is its row with its case's (code, language, contact_phone_enc) and its citizen's
        sms_opted_out_at; `survey` the state of its survey, if any."""
        phone = uow.cipher.decrypt(job.contact_phone_enc, "phone") if job.contact_phone_enc else ""
        if self.phone is None:
            return _NotNow("SMS is off (MINYI_SMS_PROVIDER is not set)")
        if not phone:
            return _NotNow("no mobile number on file")
        if job.sms_opted_out_at is not None:
            return _NotNow("the number opted out of SMS")
        if job.topic == "survey_sms":
            if survey != "open":
                return _NotNow("the survey was answered or expired before the SMS")
            quiet_end = self.surveys.quiet_end(utcnow(), self.tz)
            if quiet_end is not None:
                return _NotNow(until=quiet_end)  # nobody is texted at night
        # A 验证码 travels sealed in its job and is opened only to be texted.
        secret = open_code(uow, job.payload["sealed"]) if "sealed" in job.payload else ""
        template, params, text = self._sms(job, secret)
        if not self.phone.has_template(template):
            return _NotNow(
                f"no approved SMS template for '{template}' (MINYI_SMS_TEMPLATE_{template.upper()})"
            )
        return _Text(_route(self.phone, phone, template, params), _notice(job.id, text))

    def _answer(self, uow: UnitOfWork, job: Row[Any]) -> _Text | _NotNow:
        """The conversation's answer to the mobile that texted: sealed in its job, about no
        case (or any), through the same provider and route as every SMS."""
        if self.phone is None:
            return _NotNow("SMS is off (MINYI_SMS_PROVIDER is not set)")
        to, text = open_answer(uow, job.payload["sealed"])
        return _Text(_route(self.phone, to, "notice", {"text": text}), _notice(job.id, text))

    def _sms(self, job: Row[Any], secret: str = "") -> tuple[str, dict[str, str], str]:
        """(template, its parameters, the full text) of an SMS-only job (its row, with its
        case's code and language)."""
        t = self.catalog.for_language(job.language)
        ref = short_reference(job.code)
        if job.topic == "survey_sms":
            sign = self.phone.sign_name if self.phone is not None else ""
            return "survey", {"ref": ref}, survey_sms(t, self.surveys.scale, ref, sign)
        data = job.payload
        template, params = data["template"], dict(data.get("params") or {})
        values = dict(data.get("values") or {})
        if secret:
            params["code"] = values["code"] = secret
        text = t(data["text_key"], **values)
        if template == "notice":
            params = {"text": text}
        return template, params, text

    # -- recording -----------------------------------------------------------------------------

    async def _recorder(
        self,
        plans: dict[int, _Text | _NotNow],
        sent: asyncio.Queue[tuple[int, list[Attempt]] | None],
    ) -> None:
        """Record what was sent, in order, as it comes: each transaction takes all that came
        while the one before it was written, and in the LINGER after the first of them.
        Raises the first failure after the rest."""
        failure: BaseException | None = None
        done = False
        while not done:
            group = [await sent.get()]
            if group[0] is not None:
                await self.linger()
            while not sent.empty():
                group.append(sent.get_nowait())
            done = group[-1] is None
            outcomes = [each for each in group if each is not None]
            if not outcomes:
                continue
            try:
                await self._record(plans, outcomes)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def _record(
        self, plans: dict[int, _Text | _NotNow], outcomes: list[tuple[int, list[Attempt]]]
    ) -> None:
        """Record many outcomes in one transaction; when that fails for good (not a database
        coming back: `record_surely` waits for that), each alone, so one that cannot be
        recorded does not leave the others leased to be sent a second time."""
        ids = [job_id for job_id, _ in outcomes]
        try:
            await record_surely(
                lambda: self._record_together(plans, outcomes), f"SMS notifications {ids}"
            )
            return
        except Exception:
            if len(outcomes) == 1:
                raise
            log.exception("%d SMS notifications not recorded together; one by one", len(ids))
        failure: BaseException | None = None
        for outcome in outcomes:
            try:
                await record_surely(
                    partial(self._record_together, plans, [outcome]),
                    f"SMS notification {outcome[0]}",
                )
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    async def _record_together(
        self, plans: dict[int, _Text | _NotNow], outcomes: list[tuple[int, list[Attempt]]]
    ) -> None:
        """Record outcomes in one transaction, in their order. An SMS the provider took —
        nearly all — is written as rows (its timeline entry, its delivery, the job sent, a
        survey's sms_sent_at): a few statements for them all and no ORM object, which cost
        more than the writing. The rest (skipped, postponed, failed, to retry) go through
        `settle`, as one by one would."""
        slow = [job_id for job_id, attempts in outcomes if not _taken(plans[job_id], attempts)]
        async with self.units() as uow:
            jobs = await uow.notifications.rows([job_id for job_id, _ in outcomes])
            case_ids = sorted({j.case_id for j in jobs.values() if j.case_id is not None})
            query = select(Case.id, Case.code).where(Case.id.in_(case_ids)).order_by(Case.id)
            if uow.db.is_postgres:
                query = query.with_for_update()  # in case order, like every batch: no deadlock
            # What a timeline entry needs of its case, held (FOR UPDATE) until the commit.
            heads = {
                row.id: _CaseHead(row.id, row.code) for row in await uow.session.execute(query)
            }
            slow_jobs = await uow.notifications.get_many(slow)
            slow_cases = await _rows(uow, Case, {j.case_id for j in slow_jobs.values()})
            # Kept referenced, so that `settle` finds them in the session.
            _surveys = await _rows(
                uow, Survey, {j.payload.get("survey") for j in slow_jobs.values()}
            )
            await uow.events.preload(case_ids)
            uow.events.hold()
            uow.notifications.hold()
            sent: list[tuple[int, list[str]]] = []
            surveys: list[int] = []
            for job_id, attempts in outcomes:
                if (job := jobs.get(job_id)) is None:
                    continue
                if not _taken(plans[job_id], attempts):
                    if (orm := slow_jobs.get(job_id)) is not None:  # else erased meanwhile
                        await self._settle(uow, orm, slow_cases, plans[job_id], attempts)
                    continue
                attempt = attempts[0]
                if attempt.message_id:
                    await uow.notifications.record_delivery(
                        attempt.channel, attempt.message_id, job
                    )
                if (head := heads.get(job.case_id)) is not None:
                    data = {
                        "topic": job.topic,
                        "route": attempt.route,
                        "message_id": attempt.message_id or "",
                    }
                    await uow.events.append(head, "notification.sent", "minyi", data)  # type: ignore[arg-type]
                sent.append((job_id, [*job.done_routes, attempt.route]))
                if job.topic == "survey_sms" and isinstance(job.payload.get("survey"), int):
                    surveys.append(job.payload["survey"])
            await uow.notifications.sent_many(sent)
            await _touch(uow, heads.values())
            if surveys:
                table = table_of(Survey)
                await uow.session.execute(
                    update(table).where(table.c.id.in_(surveys)).values(sms_sent_at=utcnow())
                )
            await uow.events.write_held()
            await uow.notifications.write_held()
            await uow.commit()

    async def _settle(
        self,
        uow: UnitOfWork,
        job: Notification,
        cases: dict[int, Case],
        plan: _Text | _NotNow,
        attempts: list[Attempt],
    ) -> None:
        """One job that was not simply sent: postponed, skipped, or its attempts settled."""
        case = cases.get(job.case_id) if job.case_id is not None else None
        if isinstance(plan, _NotNow) and plan.until is not None:
            uow.notifications.postpone(job, plan.until)
        elif isinstance(plan, _NotNow):
            uow.notifications.skipped(job, plan.why)
            if case is not None:
                data = {"topic": job.topic, "why": plan.why}
                await uow.events.append(case, "notification.skipped", "minyi", data)
        else:
            await settle(uow, job, case, attempts, alert_staff=False)


@dataclass
class _CaseHead:
    """A case as a timeline entry reads it (id, code), held FOR UPDATE by the caller; the
    entry's time lands in `updated_at`, which `_touch` writes."""

    id: int
    code: str
    updated_at: datetime | None = None


def _taken(plan: _Text | _NotNow, attempts: list[Attempt]) -> bool:
    """An SMS the provider took at the first try: recorded as rows."""
    return isinstance(plan, _Text) and len(attempts) == 1 and attempts[0].ok


async def _touch(uow: UnitOfWork, heads: Iterable[_CaseHead]) -> None:
    """Each case's updated_at, as appending to its timeline sets it on a Case."""
    touched = [{"b_id": h.id, "b_at": h.updated_at} for h in heads if h.updated_at is not None]
    if touched:
        table = table_of(Case)
        await uow.session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(updated_at=bindparam("b_at")),
            touched,
        )


async def _rows(uow: UnitOfWork, model: Any, ids: set[Any]) -> dict[int, Any]:
    """Rows of `model` by id, in one query (kept in the session, so `session.get` finds them)."""
    wanted = sorted(i for i in ids if isinstance(i, int))
    if not wanted:
        return {}
    rows = await uow.session.scalars(select(model).where(model.id.in_(wanted)))
    return {row.id: row for row in rows}


def _route(phone: PhoneTexting, to: str, template: str, params: dict[str, str]) -> Route:
    async def text(notice: Notice) -> str | None:
        return await phone.text_phone(to, template, params, notice.replies[0].text, notice.key)

    return Route("sms", "sms", conversational=False, deliver=text)


def _notice(job_id: int, text: str) -> Notice:
    return Notice([Reply(text)], f"{job_id}.sms")
