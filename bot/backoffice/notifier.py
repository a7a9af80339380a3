"""The notifier: tells citizens about their case and staff about cases that need a person.

Jobs are leased in a short transaction and sent outside any transaction, then the outcome is
recorded: every attempt lands on the case timeline. A citizen is reached on the channel the case
came from, falling back when that route cannot reach them (WeChat customer-service message →
template message → SMS; Telegram → SMS; web chat keeps the message for the page). A route that
fails for a passing reason makes the whole job wait and retry with back-off; after the last try
the timeline records `notification.failed` and staff are told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.app.logs import mask_phones
from channels.base import DeliveryFailed, RecipientUnreachable
from channels.sms import SmsMessage
from channels.staff import SignedWebhook, StaffAlert, StaffTarget, WeComRobot
from channels.telegram import TelegramChannel
from channels.telegram.staff import GroupAlerts
from conversation.codes import short_reference
from conversation.messages import Reply
from conversation.survey_text import survey_sms
from storage.crypto import mask_phone
from storage.models import Case, Citizen, Identity, Notification, StaffThread, Survey, utcnow
from storage.staff_threads import conversation_of, open_thread
from storage.uow import UnitOfWork

if TYPE_CHECKING:  # the runtime builds the staff desk, which uses the notifier
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 50
PARALLEL = 8
# Survey SMS and SMS answering the citizen's own SMS: that route only, no chat, no fallback.
SMS_ONLY = frozenset({"survey_sms", "sms_followup"})
STATUS_ZH = {
    "accepted": "已受理",
    "redirected": "不予受理",
    "replied": "已答复",
    "closed": "已办结",
    "extended": "已延期",
}
CHANNEL_ZH = {
    "wechat": "微信",
    "telegram": "Telegram",
    "webchat": "网页",
    "sms": "短信",
    "console": "终端",
}
STAFF_TITLES = {
    "handoff": "群众要求人工服务",
    "risk": "高风险事项，请立即处理",
    "unhappy": "群众对办理结果不满意",
    "deadline.warning": "期限将到",
    "deadline.missed": "已超期",
    "notification.failed": "无法通知群众",
}


@dataclass
class _Attempt:
    route: str
    ok: bool
    error: str = ""
    message_id: str | None = None
    retry_after: float | None = None
    unreachable: bool = False


class Notifier:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.targets = staff_targets(runtime)

    async def run_once(self) -> int:
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            jobs = await uow.notifications.lease_due(BATCH, skip_locked=runtime.db.is_postgres)
            leased = [(job.id, job.audience, job.topic, job.case_id) for job in jobs]
            await uow.commit()
        if not leased:
            return 0
        # One case's messages go out in the order they were queued ("accepted" before "closed"
        # before the survey question); different cases go in parallel.
        per_case: dict[int | None, list[tuple[int, str]]] = {}
        for job_id, audience, topic, case_id in sorted(leased):
            if audience == "citizen":
                per_case.setdefault(case_id, []).append((job_id, topic))
        gate = asyncio.Semaphore(PARALLEL)

        async def in_order(queue: list[tuple[int, str]]) -> None:
            async with gate:
                for job_id, topic in queue:
                    await (self._sms_only(job_id) if topic in SMS_ONLY else self._citizen(job_id))

        staff_ids = [job_id for job_id, audience, _, _ in leased if audience == "staff"]
        await asyncio.gather(
            *(in_order(queue) for queue in per_case.values()),
            self._staff(staff_ids) if staff_ids else asyncio.sleep(0),
        )
        return len(leased)

    # -- citizens ------------------------------------------------------------------------------

    async def _citizen(self, job_id: int) -> None:
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            job = await uow.notifications.get(job_id)
            if job is None or job.case_id is None:
                return
            case = await uow.session.get(Case, job.case_id)
            assert case is not None
            identity = await uow.session.get(Identity, case.identity_id)
            assert identity is not None
            _, phone = uow.cases.contact(case)
            citizen = await uow.session.get(Citizen, case.citizen_id) if case.citizen_id else None
            survey_topic = job.topic == "survey"
            if survey_topic and not await self._survey_open(uow, job):
                uow.notifications.skipped(
                    job, "the survey was answered or expired before it was asked"
                )
                await uow.commit()
                return
            routes = self.routes(case.channel, identity, phone, citizen, chat_only=survey_topic)
            if survey_topic:
                replies = runtime.engine.rating_invitation(case.code, case.language)
            else:
                replies = [Reply(self.text(job, case))]
            fields = self.template_fields(job, case)
            recipient, key, code, language = identity.external_id, job.key, case.code, case.language
            chat = case.channel
        attempts = await self.reach(routes, recipient, phone, replies, key, fields)
        if survey_topic and attempts and attempts[-1].ok:
            # Only now that the question is on the citizen's screen does their next "1" mean 满意.
            try:
                await runtime.engine.expect_rating(chat, recipient, code, language)
            except Exception as exc:
                # The question went out and is recorded below either way: failing here used to
                # leave the job leased, to be asked again. Without the conversation store (Redis
                # down, the conversation busy) a "1" in the chat is not read as a rating; the
                # SMS survey and the menu's 评价 still are.
                log.warning(
                    "survey for %s asked, but the chat will not read the answer (%s: %s)",
                    code,
                    type(exc).__name__,
                    exc,
                )
        await self._record_citizen(job_id, attempts, alert_staff=not survey_topic)

    async def _sms_only(self, job_id: int) -> None:
        """A survey SMS, or an SMS answering the citizen's SMS: this route only, no fallback."""
        runtime = self.runtime
        sms = runtime.channels.get("sms")
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            job = await uow.notifications.get(job_id)
            assert job is not None and job.case_id is not None
            case = await uow.session.get(Case, job.case_id)
            assert case is not None
            _, phone = uow.cases.contact(case)
            citizen = await uow.session.get(Citizen, case.citizen_id) if case.citizen_id else None
            why_not = ""
            if sms is None:
                why_not = "SMS is off (MINYI_SMS_PROVIDER is not set)"
            elif not phone:
                why_not = "no mobile number on file"
            elif citizen is not None and citizen.sms_opted_out_at is not None:
                why_not = "the number opted out of SMS"
            elif job.topic == "survey_sms" and not await self._survey_open(uow, job):
                why_not = "the survey was answered or expired before the SMS"
            if why_not:
                uow.notifications.skipped(job, why_not)
                await uow.events.append(
                    case, "notification.skipped", "minyi", {"topic": job.topic, "why": why_not}
                )
                await uow.commit()
                return
            assert sms is not None
            quiet_end = (
                runtime.surveys.quiet_end(utcnow(), runtime.settings.tz())
                if job.topic == "survey_sms"
                else None
            )
            if quiet_end is not None:
                uow.notifications.postpone(job, quiet_end)  # nobody is texted at night
                await uow.commit()
                return
            message = self.sms_message(job, case, phone)
            if not sms.has_template(message.template):  # type: ignore[attr-defined]
                why_not = f"no approved SMS template for '{message.template}' (MINYI_SMS_TEMPLATE_{message.template.upper()})"
                uow.notifications.skipped(job, why_not)
                await uow.events.append(
                    case, "notification.skipped", "minyi", {"topic": job.topic, "why": why_not}
                )
                await uow.commit()
                return
        try:
            message_id = await sms.send_sms(message)  # type: ignore[attr-defined]
            attempt = _Attempt("sms", True, message_id=message_id)
        except RecipientUnreachable as exc:
            attempt = _Attempt("sms", False, exc.reason, unreachable=True)
        except DeliveryFailed as exc:
            attempt = _Attempt("sms", False, exc.reason, retry_after=exc.retry_after)
        await self._record_citizen(job_id, [attempt], alert_staff=False)

    def sms_message(self, job: Notification, case: Case, phone: str) -> SmsMessage:
        settings = self.runtime.settings
        t = self.runtime.office.catalog.for_language(case.language)
        ref = short_reference(case.code)
        if job.topic == "survey_sms":
            text = survey_sms(t, self.runtime.surveys.scale, ref, settings.sms_sign_name or "")
            template, params = "survey", {"ref": ref}
        else:
            data = job.payload
            template, params = data["template"], dict(data.get("params") or {})
            text = t(data["text_key"], **dict(data.get("values") or {}))
            if template == "notice":
                params = {"text": text}
        return SmsMessage(
            to=phone, template=template, params=params, text=text, idempotency_key=f"{job.id}.sms"
        )

    async def _survey_open(self, uow: UnitOfWork, job: Notification) -> bool:
        survey = await uow.session.get(Survey, job.payload.get("survey"))
        return survey is not None and survey.status == "open"

    def routes(
        self,
        channel: str,
        identity: Identity | None,
        phone: str,
        citizen: Citizen | None,
        *,
        chat_only: bool = False,
    ) -> list[str]:
        """The routes to try in order, starting with the citizen's own channel. A survey is
        asked in the chat only (its SMS is a job of its own), and so is a staff member's word."""
        channels = self.runtime.channels
        routes: list[str] = []
        if channel == "wechat" and (identity is None or identity.unsubscribed_at is None):
            routes += ["wechat"] if chat_only else ["wechat", "wechat_template"]
        elif channel == "telegram" and (identity is None or identity.unreachable_at is None):
            routes.append("telegram")
        elif channel in ("webchat", "console"):
            routes.append("mailbox")
        if phone and not (citizen and citizen.sms_opted_out_at) and not chat_only:
            routes.append("sms")
        available = {
            "wechat": "wechat",
            "wechat_template": "wechat",
            "telegram": "telegram",
            "mailbox": "webchat",
            "sms": "sms",
        }
        return [r for r in routes if available[r] in channels]

    async def reach(
        self,
        routes: list[str],
        recipient: str,
        phone: str,
        replies: list[Reply],
        key: str,
        fields: dict[str, str] | None = None,
    ) -> list[_Attempt]:
        """Try the routes in order until one delivers or one fails for a passing reason."""
        attempts: list[_Attempt] = []
        for route in routes:
            attempt = await self._try(route, recipient, phone, replies, fields or {}, key)
            attempts.append(attempt)
            if attempt.ok or not attempt.unreachable:
                break  # delivered, or a passing failure: the whole chain waits and retries
        return attempts

    async def _try(
        self,
        route: str,
        recipient: str,
        phone: str,
        replies: list[Reply],
        fields: dict[str, str],
        key: str,
    ) -> _Attempt:
        channels = self.runtime.channels
        try:
            if route == "wechat_template":
                message_id = await channels["wechat"].send_template(recipient, fields, f"{key}:tpl")  # type: ignore[attr-defined]
            elif route == "sms":
                message_id = await channels["sms"].send(phone, replies)
            elif route == "mailbox":
                message_id = await channels["webchat"].send(recipient, replies)
            else:
                message_id = await channels[route].send(recipient, replies)
        except RecipientUnreachable as exc:
            return _Attempt(route, False, exc.reason, unreachable=True)
        except DeliveryFailed as exc:
            return _Attempt(route, False, exc.reason, retry_after=exc.retry_after)
        except Exception as exc:  # a bug or an unexpected answer must not lose the notification
            log.exception("notification route %s failed unexpectedly", route)
            return _Attempt(route, False, f"{type(exc).__name__}: {exc}")
        return _Attempt(route, True, message_id=message_id)

    async def _record_citizen(
        self, job_id: int, attempts: list[_Attempt], *, alert_staff: bool = True
    ) -> None:
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            job = await uow.notifications.get(job_id)
            assert job is not None and job.case_id is not None
            case = await uow.session.get(Case, job.case_id, with_for_update=runtime.db.is_postgres)
            assert case is not None
            for attempt in attempts:
                if attempt.ok:
                    await uow.events.append(
                        case,
                        "notification.sent",
                        "minyi",
                        {
                            "topic": job.topic,
                            "route": attempt.route,
                            "message_id": attempt.message_id or "",
                        },
                    )
                    if attempt.message_id:
                        channel = "sms" if attempt.route == "sms" else attempt.route.split("_")[0]
                        await uow.notifications.record_delivery(channel, attempt.message_id, job)
                else:
                    await uow.events.append(
                        case,
                        "notification.attempt_failed",
                        "minyi",
                        {"topic": job.topic, "route": attempt.route, "error": attempt.error[:300]},
                    )
                    if attempt.unreachable and attempt.route == "telegram":
                        identity = await uow.session.get(Identity, case.identity_id)
                        if identity is not None:
                            identity.unreachable_at = utcnow()
            delivered = next((a for a in attempts if a.ok), None)
            if delivered is not None:
                uow.notifications.succeeded(job, delivered.route)
                if job.topic == "survey_sms" and (
                    survey := await uow.session.get(Survey, job.payload.get("survey"))
                ):
                    survey.sms_sent_at = utcnow()
            elif not attempts or all(a.unreachable for a in attempts):
                error = attempts[-1].error if attempts else "no route can reach the citizen"
                await self._give_up(uow, job, case, error, alert_staff=alert_staff)
            else:
                last = attempts[-1]
                if not uow.notifications.retry_later(
                    job, last.error, wait=_seconds(last.retry_after)
                ):
                    await self._give_up(
                        uow, job, case, last.error, alert_staff=alert_staff, counted=True
                    )
            await uow.commit()

    async def _give_up(
        self,
        uow: UnitOfWork,
        job: Notification,
        case: Case,
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
        await uow.events.append(
            case, "notification.failed", "minyi", {"topic": job.topic, "error": error[:300]}
        )
        if not alert_staff:
            return  # e.g. a survey the chat could not ask: its SMS asks instead
        await uow.notifications.add(
            f"staff:notification.failed:{job.key}",
            "staff",
            "notification.failed",
            case,
            {"topic": job.topic, "error": error[:300]},
        )

    def text(self, job: Notification, case: Case) -> str:
        """The citizen's message in their language, from the catalog."""
        t = self.runtime.office.catalog.for_language(case.language)
        data = job.payload
        due = data.get("finish_by") or (
            case.finish_due_at.isoformat() if case.finish_due_at else ""
        )
        return t(
            f"notify.{job.topic}",
            code=case.code,
            due=self._day(due, case.language),
            review=self._day(data.get("review_by", ""), case.language),
            reason=data.get("reason", ""),
            where=data.get("department", ""),
            note=data.get("note", ""),
        )

    def template_fields(self, job: Notification, case: Case) -> dict[str, str]:
        data = job.payload
        note = data.get("note") or data.get("reason") or ""
        if job.topic in ("accepted", "extended"):
            note = f"办结期限：{self._day(data.get('finish_by', ''), 'zh')}" + (
                f"；{note}" if note else ""
            )
        return {
            "code": case.code,
            "status": STATUS_ZH.get(job.topic, job.topic),
            "time": utcnow().astimezone(self.runtime.settings.tz()).strftime("%Y-%m-%d %H:%M"),
            "note": note[:200],
        }

    def _day(self, iso: str, lang: str) -> str:
        if not iso:
            return ""
        local = datetime.fromisoformat(iso).astimezone(self.runtime.settings.tz())
        return (
            f"{local.year}年{local.month}月{local.day}日" if lang == "zh" else f"{local:%Y-%m-%d}"
        )

    # -- staff ---------------------------------------------------------------------------------

    async def _staff(self, job_ids: Sequence[int]) -> None:
        runtime = self.runtime
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            jobs = [
                job
                for job_id in job_ids
                if (job := await uow.notifications.get(job_id)) is not None
            ]
            alerts = {job.id: await self.alert(uow, job) for job in jobs}
            done = {job.id: list(job.done_routes) for job in jobs}
            if any(target.name == "telegram" for target in self.targets):
                # Staff in the duty group may answer the citizen through the alert: a thread
                # for each alert about someone, named by the alert's buttons.
                for job in jobs:
                    if (who := await conversation_of(uow.session, job)) is not None:
                        thread = await open_thread(uow.session, job, *who)
                        alerts[job.id] = replace(alerts[job.id], thread=thread.id)
            await uow.commit()
        failures: dict[int, DeliveryFailed] = {}
        posted: dict[str, str] = {}
        for target in self.targets:
            waiting = [job_id for job_id in alerts if target.name not in done[job_id]]
            if not waiting:
                continue
            try:
                sent = await target.send([alerts[job_id] for job_id in waiting])
                if target.name == "telegram":
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
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            for job_id in alerts:
                job = await uow.notifications.get(job_id)
                assert job is not None
                if not self.targets:
                    job.status, job.finished_at, job.leased_until = "skipped", utcnow(), None
                    job.last_error = "no staff target configured (MINYI_STAFF_*)"
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

    async def alert(self, uow: UnitOfWork, job: Notification) -> StaffAlert:
        """What staff read: case, category, a short summary with the phone masked, and why."""
        data = job.payload
        case = await uow.session.get(Case, job.case_id) if job.case_id else None
        summary = str(data.get("summary") or (case.description if case else ""))
        summary = mask_phones(summary[:80] + ("…" if len(summary) > 80 else ""))
        detail = ""
        if case is not None:
            _, phone = uow.cases.contact(case)
            if phone:
                summary += f"（电话 {mask_phone(phone)}）"
        if job.topic.startswith("deadline."):
            due = datetime.fromisoformat(data["due_at"]).astimezone(self.runtime.settings.tz())
            detail = f"期限：{data.get('deadline', '')}，{due:%Y-%m-%d %H:%M}"
        elif data.get("risk_words"):
            detail = "风险词：" + "、".join(data["risk_words"])
        elif job.topic == "notification.failed":
            detail = f"未送达：{data.get('topic', '')}（{data.get('error', '')}）"
        category = ""
        if case is not None:
            found = self.runtime.office.category(case.category)
            category = found.label("zh") if found else case.category
        return StaffAlert(
            key=job.key,
            reason=job.topic,
            title=STAFF_TITLES.get(job.topic, job.topic),
            code=case.code if case else "",
            category=category,
            summary=summary,
            channel=CHANNEL_ZH.get(case.channel if case else str(data.get("channel", "")), ""),
            detail=detail,
        )


def staff_targets(runtime: Runtime) -> list[StaffTarget]:
    settings = runtime.settings
    targets: list[StaffTarget] = []
    telegram = runtime.channels.get("telegram")
    if settings.staff_telegram_chat and isinstance(telegram, TelegramChannel):
        targets.append(GroupAlerts(telegram))
    if settings.staff_wecom_key:
        targets.append(
            WeComRobot(
                runtime.http,
                settings.staff_wecom_api_base,
                settings.staff_wecom_key,
                runtime.shared,
            )
        )
    if settings.staff_webhook_url and settings.staff_webhook_secret:
        targets.append(
            SignedWebhook(runtime.http, settings.staff_webhook_url, settings.staff_webhook_secret)
        )
    return targets


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None
