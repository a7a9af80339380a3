"""Telling staff that a person is needed — handoffs, risky matters, unhappy ratings, deadlines,
notices that could not reach a citizen — on every configured staff front end, and posting a
citizen's words under the alert while a staff member has them.

Each target gets the batch once (`done_routes`); one that fails makes only its alerts wait and
retry. Alerts about someone staff can talk to open a staff thread when a target lets staff
answer through the alert (the Telegram duty group's 认领 button).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Row, select

from bot.app.logs import mask_phones
from channels.base import DeliveryFailed, SharedCache
from channels.staff import StaffAlert, StaffTarget, ThreadTarget, ThreadView
from conversation.catalog import Catalog
from conversation.office import OfficeConfig
from storage.crypto import mask_phone
from storage.models import Case, Identity, Notification, StaffThread, utcnow
from storage.staff_threads import changed, open_threads
from storage.uow import UnitOfWork, Units

from .casework_alerts import TOPICS as CASEWORK_TOPICS
from .casework_alerts import addressees, casework_detail
from .reach import CitizenReach
from .recording import record_surely
from .staff_threads import remember_post

log = logging.getLogger(__name__)

SUMMARY_LENGTH = 80


class StaffAlerts:
    def __init__(
        self,
        units: Units,
        targets: Sequence[StaffTarget],
        office: OfficeConfig,
        tz: tzinfo,
        reach: CitizenReach,
        shared: SharedCache,
        desk_url: str = "",
    ) -> None:
        # MINYI_PUBLIC_URL: photo links in relayed words open the desk from WeCom or Telegram.
        self.desk_url = desk_url.rstrip("/")
        self.units = units
        self.targets = list(targets)
        self.office = office
        self.catalog: Catalog = office.catalog
        self.tz = tz
        self.reach = reach  # only for the channels' names
        self.shared = shared
        self.threads = [t for t in self.targets if isinstance(t, ThreadTarget)]

    async def send(self, jobs: Sequence[tuple[int, str]]) -> None:
        """Leased staff jobs, as (id, topic): the citizens' words in threads, then the alerts."""
        relays = [job_id for job_id, topic in jobs if topic == "citizen.message"]
        alerts_ids = [job_id for job_id, topic in jobs if topic != "citizen.message"]
        for job_id in relays:
            await self._relay(job_id)
        if alerts_ids:
            await self._alert(alerts_ids)

    # -- alerts --------------------------------------------------------------------------------

    async def _alert(self, job_ids: Sequence[int]) -> None:
        async with self.units() as uow:
            found = await uow.notifications.rows(job_ids)
            jobs = [found[job_id] for job_id in job_ids if job_id in found]
            # Their cases, with the identity of each case's citizen, as rows in one query: what
            # an alert shows and whom its thread reaches (ORM objects for them, JSON columns
            # decoded, cost more than all the rest of an alert).
            cases = await case_rows(uow, {j.case_id for j in jobs})
            # Case-work alerts read more of their case (its departments, who routed it): as
            # ORM objects, as `compose` does, their cases loaded at once (kept referenced).
            work = await uow.notifications.get_many(
                [j.id for j in jobs if j.topic in CASEWORK_TOPICS]
            )
            _work_cases = await _orm_cases(uow, {j.case_id for j in work.values()})
            alerts = {
                job.id: await self.compose(uow, work[job.id])
                if job.id in work
                else await self._compose(uow, job, cases.get(job.case_id or 0))
                for job in jobs
            }
            done = {job.id: list(job.done_routes) for job in jobs}
            # Staff may answer the citizen of any alert about someone: a thread for it, which
            # the desk lists at once and the alert's buttons (认领 / 查看) name elsewhere.
            wanted = [(job, *who) for job in jobs if (who := _talks_to(job, cases)) is not None]
            for job_id, thread_id in (await open_threads(uow.session, wanted)).items():
                alerts[job_id] = replace(alerts[job_id], thread=thread_id)
                changed(uow, thread_id)
            await uow.commit()
        failures: dict[int, DeliveryFailed] = {}
        posted: dict[str, str] = {}
        for target in self.targets:
            waiting = [job_id for job_id in alerts if target.name not in done[job_id]]
            if not waiting:
                continue
            try:
                sent = await target.send([alerts[job_id] for job_id in waiting])
                if isinstance(target, ThreadTarget):
                    posted.update(sent)
            except DeliveryFailed as exc:
                log.warning("staff alerts to %s failed: %s", target.name, exc.reason)
                failures.update({job_id: exc for job_id in waiting})
            except Exception as exc:
                log.exception("staff alerts to %s failed unexpectedly", target.name)
                failures.update(
                    {job_id: DeliveryFailed(f"{type(exc).__name__}: {exc}") for job_id in waiting}
                )
            else:
                for job_id in waiting:
                    done[job_id].append(target.name)

        async def record() -> None:
            await self._record(alerts, failures, done, posted)

        await record_surely(record, f"staff alerts {sorted(alerts)}")

    async def _record(
        self,
        alerts: dict[int, StaffAlert],
        failures: dict[int, DeliveryFailed],
        done: dict[int, list[str]],
        posted: dict[str, str],
    ) -> None:
        # Alerts every target took, with no posted message to note on a thread (nearly all):
        # recorded by one statement for them all; the rest through their ORM objects.
        plain = {
            job_id: done[job_id]
            for job_id, alert in alerts.items()
            if self.targets and job_id not in failures and alert.key not in posted
        }
        async with self.units() as uow:
            await uow.notifications.sent_many(list(plain.items()))
            rest = [job_id for job_id in alerts if job_id not in plain]
            jobs = await uow.notifications.get_many(rest)
            for job_id in rest:
                job = jobs[job_id]
                if not self.targets:
                    job.status, job.finished_at, job.leased_until = "skipped", utcnow(), None
                    job.last_error = "only the desk shows it: no other staff front end (MINYI_STAFF_*, MINYI_WECOM_*) is set up"
                elif job_id in failures:
                    error = failures[job_id]
                    if not uow.notifications.retry_later(
                        job, error.reason, done[job_id], wait=_seconds(error.retry_after)
                    ):
                        log.error("staff alert %s given up: %s", job.key, error.reason)
                else:
                    job.done_routes = done[job_id]
                    uow.notifications.succeeded(job)
                thread_id = alerts[job_id].thread
                if thread_id is not None and job.key in posted:
                    posted_thread = await uow.session.get(StaffThread, thread_id)
                    if posted_thread is not None:
                        posted_thread.alert_message_id = posted[job.key]
            await uow.commit()

    async def compose(self, uow: UnitOfWork, job: Notification) -> StaffAlert:
        """What staff read: case, category, a short summary with the phone masked, and why."""
        case = await uow.session.get(Case, job.case_id) if job.case_id else None
        return await self._compose(uow, job, case)

    async def _compose(
        self, uow: UnitOfWork, job: Notification | Row[Any], case: Case | Row[Any] | None
    ) -> StaffAlert:
        """`compose` of a job and its case as ORM objects or as rows (a case's row has its
        code, description, category, channel and contact_phone_enc); a case-work alert's
        case is an ORM object (`casework_detail` reads more of it)."""
        t = self.catalog.for_language("zh")
        data = job.payload
        summary = str(data.get("summary") or (case.description if case else ""))
        cut = summary[:SUMMARY_LENGTH] + ("…" if len(summary) > SUMMARY_LENGTH else "")
        summary = mask_phones(cut)
        if case is not None and case.contact_phone_enc:
            phone = uow.cipher.decrypt(case.contact_phone_enc, "phone")
            if phone:
                summary += t("staff.alert.phone", phone=mask_phone(phone))
        detail = ""
        people: tuple[str, ...] = ()
        if job.topic.startswith("deadline."):
            due = datetime.fromisoformat(data["due_at"]).astimezone(self.tz)
            detail = t(
                "staff.alert.deadline",
                deadline=data.get("deadline", ""),
                due=f"{due:%Y-%m-%d %H:%M}",
            )
        elif job.topic in CASEWORK_TOPICS:
            assert case is None or isinstance(case, Case)
            detail = await casework_detail(uow, job.topic, data, case, self.office, t)
            people = await addressees(uow, job.topic, data, case)
        elif data.get("risk_words"):
            detail = t("staff.alert.risk_words", words="、".join(data["risk_words"]))
        elif job.topic == "unhappy":
            comment = mask_phones(str(data.get("comment") or ""))
            detail = t("staff.alert.rating", label=data.get("label", ""))
            detail += t("staff.alert.rating_comment", comment=comment) if comment else ""
        elif job.topic == "notification.failed":
            detail = t(
                "staff.alert.undelivered", topic=data.get("topic", ""), error=data.get("error", "")
            )
        category = ""
        if case is not None:
            found = self.office.category(case.category)
            category = found.label("zh") if found else case.category
        channel = case.channel if case else str(data.get("channel", ""))
        title = t(f"staff.alert.{job.topic}")
        lines = [f"【{title}】"]
        if case is not None:
            label = f"（{category}）" if category else ""
            lines.append(t("staff.alert.case", code=case.code, category=label))
        if summary:
            lines.append(t("staff.alert.summary", summary=summary))
        if detail:
            lines.append(detail)
        if channel:
            lines.append(t("staff.alert.channel", channel=self.reach.title(channel)))
        return StaffAlert(
            key=job.key,
            reason=job.topic,
            title=title,
            code=case.code if case else "",
            category=category,
            summary=summary,
            channel=self.reach.title(channel) if channel else "",
            detail=detail,
            text="\n".join(lines),
            addressees=people,
        )

    # -- a citizen's words in a thread -----------------------------------------------------------

    async def _relay(self, job_id: int) -> None:
        """The citizen's words under their thread's alert, on each front end that has it."""
        t = self.catalog.for_language("zh")
        async with self.units() as uow:
            job = await uow.notifications.get(job_id)
            if job is None:
                return  # erased meanwhile
            thread_id = int(job.payload["thread"])
            row = await uow.session.get(StaffThread, thread_id)
            case = await uow.session.get(Case, row.case_id) if row and row.case_id else None
            view = ThreadView(
                thread_id,
                row.alert_message_id if row else "",
                row.claimed_user if row else "",
                case.code if case else "",
            )
            said = mask_phones(str(job.payload.get("text", "")))
            if self.desk_url:
                said = said.replace(" /desk/cases/", f" {self.desk_url}/desk/cases/")
            text = t("staff.group.citizen_says", text=said)
        error = ""  # the desk has the words already (stored with the thread); these are the rest
        for target in self.threads:
            try:
                posted = await target.post_in_thread(view, text)
            except DeliveryFailed as exc:
                error = exc.reason
            else:
                await remember_post(self.shared, posted, thread_id)
        async with self.units() as uow:
            job = await uow.notifications.get(job_id)
            assert job is not None
            if not error:
                uow.notifications.succeeded(job)
            elif not uow.notifications.retry_later(job, error):
                log.error("a citizen's words to staff were given up: %s", error)
            await uow.commit()


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None


async def case_rows(uow: UnitOfWork, ids: set[int | None]) -> dict[int, Any]:
    """Cases as an alert reads them — code, description, category, channel, contact phone
    (sealed), and the identity of the citizen who filed (`identity_channel`,
    `identity_external_id`) — as rows by id, in one query."""
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    rows = await uow.session.execute(
        select(
            Case.id,
            Case.code,
            Case.description,
            Case.category,
            Case.channel,
            Case.contact_phone_enc,
            Identity.channel.label("identity_channel"),
            Identity.external_id.label("identity_external_id"),
        )
        .outerjoin(Identity, Identity.id == Case.identity_id)
        .where(Case.id.in_(wanted))
    )
    return {row.id: row for row in rows}


def _talks_to(job: Row[Any], cases: dict[int, Any]) -> tuple[str, str] | None:
    """The citizen an alert is about, as (channel, channel id), from the job's row and its
    case's (with the identity's channel and id): the one who asked for staff, else whoever
    filed its case; None when there is nobody to talk to."""
    data = job.payload
    if data.get("channel") and data.get("sender"):
        return str(data["channel"]), str(data["sender"])
    case = cases.get(job.case_id) if job.case_id is not None else None
    if case is None or case.identity_channel is None:
        return None
    return str(case.identity_channel), str(case.identity_external_id)


async def _orm_cases(uow: UnitOfWork, ids: set[int | None]) -> list[Case]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return []
    return list(await uow.session.scalars(select(Case).where(Case.id.in_(wanted))))
