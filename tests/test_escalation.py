"""督办 in three levels: a lapse raises the level one step, once — across restarts and two
workers at once — with its reason, an `escalated` event, an alert to that level's targets on
every staff front end, and `level` on the case; so does urging (催办) beyond the office's count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice import deadline_watch
from conversation.cases.escalation import EscalationRules, Level
from conversation.cases.progress import Progress
from storage.documents import document_of
from storage.lifecycle import record_progress
from storage.models import Case, CaseEvent, Notification, OutboxEntry
from storage.uow import UnitOfWork

from .conftest import Citizen

MONDAY = datetime(2026, 11, 23, 10, tzinfo=UTC)


async def scan(runtime: Minyi, now: datetime) -> int:
    """One run of the deadline watch, as the worker runs it (with the office's levels)."""
    return await deadline_watch.scan(
        lambda: UnitOfWork(runtime.db, runtime.cipher),
        runtime.deadlines,
        now,
        escalation=runtime.office.escalation,
    )


async def assigned_case(runtime: Minyi, sender: str = "esc") -> tuple[str, list[datetime]]:
    """A filed case, accepted and assigned on MONDAY: its 1-2-3 stages are running."""
    reply = await Citizen(runtime, sender=sender).file_a_matter()
    code = reply.split("编号是 ")[1].split("，")[0]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step in (Progress("accepted"), Progress("assigned", department="cgj")):
            await record_progress(uow, case, step, runtime.deadlines, MONDAY)
        stages = [datetime.fromisoformat(s["due_at"]) for s in case.stages]
        await uow.commit()
    return code, stages


async def escalations(runtime: Minyi, code: str) -> tuple[int, list[dict[str, Any]]]:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        events = [e.data for e in await uow.events.events(case) if e.type == "escalated"]
        return case.level, events


async def test_each_lapse_raises_one_level_once_across_restarts(settings: Settings) -> None:
    async with open_minyi(settings) as runtime:
        code, (contact, meet, _) = await assigned_case(runtime)
        assert await escalations(runtime, code) == (0, [])
        await scan(runtime, contact + timedelta(minutes=1))
        level, events = await escalations(runtime, code)
        assert level == 1 and len(events) == 1
        assert events[0]["cause"] == "deadline" and events[0]["deadline"] == "stage:联系群众"
        assert events[0]["level_name"] == "承办单位督办" and events[0]["targets"] == ["handling"]
        await scan(runtime, contact + timedelta(minutes=30))  # the same lapse: nothing more
        assert (await escalations(runtime, code))[0] == 1
    async with open_minyi(settings) as restarted:  # a new process: the marks are in the database
        await scan(restarted, contact + timedelta(hours=1))
        assert (await escalations(restarted, code))[0] == 1
        await scan(restarted, meet + timedelta(minutes=1))  # the next stage lapses: one more
        level, events = await escalations(restarted, code)
        assert level == 2 and [e["from"] for e in events] == [0, 1]
        async with restarted.db.session() as session:
            alerts = list(
                await session.scalars(
                    select(Notification.key)
                    .where(Notification.topic == "escalated")
                    .order_by(Notification.id)
                )
            )
            entries = await session.scalars(
                select(OutboxEntry.data).where(OutboxEntry.type == "case.updated")
            )
            updates = sum(1 for data in entries if "level" in data)
        assert alerts == [f"staff:escalated:{code}:1", f"staff:escalated:{code}:2"]
        assert updates == 2
        async with UnitOfWork(restarted.db, restarted.cipher) as uow:
            case = await uow.cases.by_code(code)
            assert case is not None
            assert (await document_of(uow, case))["level"] == 2


async def test_two_workers_at_once_raise_a_lapse_once(shared_settings: Settings) -> None:
    async with open_minyi(shared_settings) as one, open_minyi(shared_settings) as two:
        codes = [(await assigned_case(one, sender=f"esc-{n}"))[0] for n in range(3)]
        async with one.db.session() as session:
            due = max(
                datetime.fromisoformat(c.stages[0]["due_at"])
                for c in await session.scalars(select(Case))
            )
        await asyncio.gather(
            scan(one, due + timedelta(minutes=1)), scan(two, due + timedelta(minutes=1))
        )
        for code in codes:
            level, events = await escalations(one, code)
            assert (level, len(events)) == (1, 1), code


async def test_the_level_stops_at_the_top(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code, stages = await assigned_case(runtime)
    late = stages[-1] + timedelta(days=1)
    async with runtime.db.session() as session:  # the 60 days lapse too: four lapses in all
        case = (await session.scalars(select(Case))).one()
        case.finish_due_at = late - timedelta(hours=1)
        await session.commit()
    await scan(runtime, late)
    level, events = await escalations(runtime, code)
    assert level == 3 and len(events) == 3  # three levels declared; the fourth lapse is noted only


async def test_urging_beyond_the_count_raises_once(database_settings: Settings) -> None:
    async with open_minyi(database_settings) as runtime:
        code, _ = await assigned_case(runtime)
        for n in range(1, 5):
            async with UnitOfWork(runtime.db, runtime.cipher) as uow:
                case = await uow.cases.by_code(code, for_update=True)
                assert case is not None
                # What the conversation's 催办 writes (the follow-up issue): an `urged` event.
                await uow.events.append(case, "urged", "citizen:webchat", {})
                await uow.commit()
            await scan(runtime, MONDAY + timedelta(minutes=n))  # before any stage lapses
            level, events = await escalations(runtime, code)
            # The office allows two (urge_limit = 2): the third raises it, the fourth does not.
            assert level == (1 if n >= 3 else 0), n
        assert [(e["cause"], e["count"]) for e in events] == [("urged", 3)]


async def test_the_alert_names_the_level_its_reason_and_its_people(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code, (contact, *_) = await assigned_case(runtime)
    await scan(runtime, contact + timedelta(minutes=1))
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        job = await uow.session.scalar(
            select(Notification).where(Notification.topic == "escalated")
        )
        assert job is not None
        alert = await runtime.notifier.staff.compose(uow, job)
    assert alert.title == "督办升级" and alert.code == code
    assert (
        "督办级别：1级（承办单位督办）；原因：联系群众已超期；请：承办单位（区城管局）"
        in alert.text
    )


async def test_the_citizen_reads_that_the_matter_is_supervised(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code, (contact, *_) = await assigned_case(runtime)
    await scan(runtime, contact + timedelta(minutes=1))
    status = await Citizen(runtime, sender="esc").say(code)
    assert "已列入督办，加快办理" in status and "交办区城管局办理" in status
    async with runtime.db.session() as session:
        event = await session.scalar(select(CaseEvent).where(CaseEvent.type == "escalated"))
    assert event is not None and event.actor == "minyi"


def test_rules_count_levels_and_urging() -> None:
    rules = EscalationRules((Level(1, "一级"), Level(2, "二级")), urge_limit=2)
    assert [rules.next_level(n) for n in (0, 1, 2)] == [1, 2, None]
    assert [rules.urging_raises(n) for n in (2, 3)] == [False, True]
    assert EscalationRules().next_level(0) is None
    assert not EscalationRules(urge_limit=0).urging_raises(9)
