"""SMS notices and staff alerts leased, read and recorded as rows (issue 16): what they write is
what the ORM objects wrote — the lease, the job sent, its delivery (for the provider's report),
its timeline entry, the case's updated_at, a survey's sms_sent_at, a skip in its place — and
the SMS a run sends are recorded in few transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.reach import Attempt
from bot.backoffice.sms_notices import SmsNotices
from bot.backoffice.staff_alerts import case_rows
from conversation.cases.surveys import SurveyRules
from storage.crypto import mask_phone
from storage.models import Case, CaseEvent, Citizen, Delivery, Notification, Survey, utcnow
from storage.notifications import LEASE
from storage.timeline import Timeline
from storage.uow import UnitOfWork

from .test_sms_batch import BASE, closed_cases, phone
from .test_sms_notices import Gateway, unhappy_ratings, with_gateway


@pytest.fixture
async def gateway(aiohttp_server: Any) -> AsyncIterator[tuple[Gateway, str]]:
    """The `http` SMS gateway of test_sms_notices.py, answering each send at once."""
    fake = Gateway(together=1)
    app = web.Application()
    app.router.add_post("/send", fake.send)
    server: TestServer = await aiohttp_server(app)
    yield fake, str(server.make_url("")).rstrip("/")


async def queue(runtime: Minyi, key: str, topic: str, case: Case | None, payload: Any) -> int:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        await uow.notifications.add(key, "citizen", topic, case, payload)
        await uow.commit()
    async with runtime.db.session() as session:
        job_id = await session.scalar(select(Notification.id).where(Notification.key == key))
    assert job_id is not None
    return job_id


async def job(runtime: Minyi, job_id: int) -> Notification:
    async with runtime.db.session() as session:
        found = await session.get(Notification, job_id)
    assert found is not None
    return found


# A survey's follow-up SMS, as the survey queues it: its text made when it is sent.
FOLLOWUP = {
    "template": "notice",
    "params": {},
    "text_key": "survey.sms.which",
    "values": {"refs": "第1条", "first": "A1B2"},
}


async def test_lease_due_takes_due_jobs_once_as_rows_until_the_lease_ends(
    database_settings: Settings,
) -> None:
    async with open_minyi(database_settings) as runtime:
        first = await queue(runtime, "a", "sms_followup", None, {"sender": "+8613900000001"})
        second = await queue(runtime, "b", "sms_answer", None, {"sender": "+8613900000002"})
        later = await queue(runtime, "c", "sms_answer", None, {})
        now = utcnow()
        async with runtime.db.session() as session, session.begin():
            await session.execute(
                update(Notification)
                .where(Notification.id == later)
                .values(next_attempt_at=now + timedelta(hours=1))
            )

        async def lease(at: Any) -> list[Any]:
            async with UnitOfWork(runtime.db, runtime.cipher) as uow:
                rows = await uow.notifications.lease_due(10, skip_locked=uow.db.is_postgres, now=at)
                await uow.commit()
            return rows

        leased = await lease(now)
        assert [j.id for j in leased] == [first, second]  # not the one due later
        assert (leased[0].audience, leased[0].topic, leased[0].case_id) == (
            "citizen",
            "sms_followup",
            None,
        )
        assert leased[1].payload == {"sender": "+8613900000002"}
        assert (await job(runtime, first)).leased_until == now + LEASE
        assert await lease(now) == []  # held by the lease
        assert [j.id for j in await lease(now + LEASE + timedelta(seconds=1))] == [first, second]


async def test_sent_many_records_each_as_succeeded_does(database_settings: Settings) -> None:
    async with open_minyi(database_settings) as runtime:
        plain = await queue(runtime, "a", "sms_followup", None, {})
        halfway = await queue(runtime, "b", "unhappy", None, {})
        untouched = await queue(runtime, "c", "unhappy", None, {})
        async with runtime.db.session() as session, session.begin():
            await session.execute(
                update(Notification)
                .where(Notification.id == halfway)
                .values(attempts=2, done_routes=["wecom"], leased_until=utcnow())
            )
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            await uow.notifications.sent_many([(plain, ["sms"]), (halfway, ["wecom", "webhook"])])
            await uow.commit()
        one, two, three = [await job(runtime, i) for i in (plain, halfway, untouched)]
    assert (one.status, one.attempts, one.done_routes) == ("sent", 1, ["sms"])
    assert (two.status, two.attempts, two.done_routes) == ("sent", 3, ["wecom", "webhook"])
    assert one.finished_at is not None and two.finished_at is not None
    assert one.leased_until is None and two.leased_until is None
    assert (three.status, three.attempts, three.finished_at) == ("pending", 0, None)


async def test_sms_recorded_as_rows_write_what_settle_wrote_and_skips_keep_their_place(
    database_settings: Settings, gateway: tuple[Gateway, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        texts = runtime.notifier.texts
        # No quiet hours: a survey SMS goes whatever the hour the test runs at.
        monkeypatch.setattr(texts, "surveys", SurveyRules(3, 7, None, None))
        codes = await closed_cases(runtime, 3)
        async with runtime.db.session() as session, session.begin():
            await session.execute(  # the third case's citizen answered TD
                update(Citizen).where(Citizen.id == BASE + 2).values(sms_opted_out_at=utcnow())
            )
        async with runtime.db.session() as session:
            cases = [await session.get(Case, BASE + n) for n in range(3)]
            survey = await session.scalar(select(Survey).where(Survey.case_id == BASE))
        assert survey is not None and all(cases)
        asked = await queue(runtime, "s0", "survey_sms", cases[0], {"survey": survey.id})
        then = await queue(runtime, "f0", "sms_followup", cases[0], FOLLOWUP)
        other = await queue(runtime, "f1", "sms_followup", cases[1], FOLLOWUP)
        skipped = await queue(runtime, "f2", "sms_followup", cases[2], FOLLOWUP)
        assert await runtime.notifier.run_once() == 4

        assert sorted(sms["to"] for sms in fake.sent) == [phone(0), phone(0), phone(1)]
        for job_id in (asked, then, other):
            sent = await job(runtime, job_id)
            assert (sent.status, sent.attempts, sent.done_routes) == ("sent", 1, ["sms"])
            assert sent.leased_until is None and sent.finished_at is not None
        gone = await job(runtime, skipped)
        assert (gone.status, gone.last_error) == ("skipped", "the number opted out of SMS")
        async with runtime.db.session() as session:
            deliveries = list(await session.scalars(select(Delivery).order_by(Delivery.id)))
            events = list(
                await session.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.type.like("notification.%"))
                    .order_by(CaseEvent.case_id, CaseEvent.seq)
                )
            )
            rated = [await session.get(Case, BASE + n) for n in range(3)]
            chains = [await Timeline(session).verify(case) for case in rated if case]
            answered = await session.get(Survey, survey.id)
    # Each delivery names its job and case: the provider's report finds the case by it.
    assert sorted((d.notification_id, d.case_id) for d in deliveries) == [
        (asked, BASE),
        (then, BASE),
        (other, BASE + 1),
    ]
    assert [(e.case_id, e.type, e.data["topic"]) for e in events] == [
        (BASE, "notification.sent", "survey_sms"),  # in the order they were queued
        (BASE, "notification.sent", "sms_followup"),
        (BASE + 1, "notification.sent", "sms_followup"),
        (BASE + 2, "notification.skipped", "sms_followup"),
    ]
    assert {e.data.get("message_id") for e in events[:3]} == {d.message_id for d in deliveries}
    assert all(chain.ok for chain in chains) and len(codes) == 3
    for case in rated:  # updated_at moved with the case's last timeline entry
        assert case is not None
        last = max((e for e in events if e.case_id == case.id), key=lambda e: e.seq)
        assert case.updated_at == last.at
    assert answered is not None and answered.sms_sent_at is not None


async def test_the_recorder_writes_what_came_while_it_lingered_in_one_transaction(
    sqlite_only: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_minyi(sqlite_only) as runtime:
        texts: SmsNotices = runtime.notifier.texts
        groups: list[list[int]] = []

        async def record(plans: Any, outcomes: list[tuple[int, list[Attempt]]]) -> None:
            groups.append([job_id for job_id, _ in outcomes])

        sent: asyncio.Queue[tuple[int, list[Attempt]] | None] = asyncio.Queue()

        meanwhile = [(2, []), (3, [])]

        async def more_come_meanwhile() -> None:  # two more SMS went out while it waited
            while meanwhile:
                sent.put_nowait(meanwhile.pop(0))

        monkeypatch.setattr(texts, "_record", record)
        monkeypatch.setattr(texts, "linger", more_come_meanwhile)
        sent.put_nowait((1, []))
        recorder = asyncio.create_task(texts._recorder({}, sent))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        sent.put_nowait((4, []))
        sent.put_nowait(None)
        await recorder
    assert groups == [[1, 2, 3], [4]]


async def test_a_staff_alert_read_as_rows_reads_as_the_orm_objects_do(
    database_settings: Settings, gateway: tuple[Gateway, str]
) -> None:
    _, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        await unhappy_ratings(runtime)
        staff = runtime.notifier.staff
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            alerts = list(
                await uow.session.scalars(
                    select(Notification)
                    .where(Notification.topic == "unhappy")
                    .order_by(Notification.id)
                    .limit(3)
                )
            )
            rows = await uow.notifications.rows([a.id for a in alerts])
            cases = await case_rows(uow, {a.case_id for a in alerts})
            for alert in alerts:
                assert alert.case_id is not None
                composed = await staff._compose(uow, rows[alert.id], cases[alert.case_id])
                assert composed == await staff.compose(uow, alert)
                assert cases[alert.case_id].identity_channel == "webchat"
                # The phone is masked in what staff read, as before.
                mobile = phone(alert.case_id - BASE)
                assert mask_phone(mobile) in composed.text and mobile not in composed.text


async def test_an_sms_the_provider_refused_is_settled_as_before_beside_one_it_took(
    database_settings: Settings, aiohttp_server: Any
) -> None:
    """One SMS refused (503: try again later) and one taken, recorded in one run: the refused
    one waits with its back-off and its failed attempt on the timeline; the taken one is sent."""
    taken: list[str] = []

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        if body["to"] == phone(1):
            return web.json_response({"error": "busy"}, status=503)
        taken.append(body["to"])
        return web.json_response({"accepted": True}, status=202)

    app = web.Application()
    app.router.add_post("/send", send)
    server: TestServer = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        await closed_cases(runtime, 2)
        async with runtime.db.session() as session:
            cases = [await session.get(Case, BASE + n) for n in range(2)]
        ok = await queue(runtime, "f0", "sms_followup", cases[0], FOLLOWUP)
        refused = await queue(runtime, "f1", "sms_followup", cases[1], FOLLOWUP)
        assert await runtime.notifier.run_once() == 2
        sent, waiting = await job(runtime, ok), await job(runtime, refused)
        async with runtime.db.session() as session:
            deliveries = list(await session.scalars(select(Delivery)))
            failed = list(
                await session.scalars(
                    select(CaseEvent).where(CaseEvent.type == "notification.attempt_failed")
                )
            )
    assert taken == [phone(0)]
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert (waiting.status, waiting.attempts, waiting.done_routes) == ("pending", 1, [])
    assert waiting.leased_until is None and waiting.next_attempt_at > utcnow()
    assert waiting.last_error
    assert [(d.notification_id, d.case_id) for d in deliveries] == [(ok, BASE)]
    assert [(e.case_id, e.data["topic"]) for e in failed] == [(BASE + 1, "sms_followup")]
