"""Suggestions (人民建议) follow their own path: no acceptance deadline, no warnings, no survey."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app.wiring import Minyi
from conversation.cases.progress import Progress
from storage.documents import case_document
from storage.lifecycle import record_progress
from storage.lookups import CaseLookups
from storage.models import Case, Notification, OutboxEntry, Survey, utcnow
from storage.uow import UnitOfWork

from .conftest import Citizen
from .test_deadlines import scan

STEPS = (
    Progress("accepted"),
    Progress("assigned", department="区发改委"),
    Progress("replied", note="您的建议已转相关部门研究。"),
    Progress("closed"),
)


async def suggest(runtime: Minyi, sender: str = "s-1") -> str:
    citizen = Citizen(runtime, sender=sender)
    await citizen.say("4")
    await citizen.say("建议在地铁站附近多设几个共享单车停放点")
    await citizen.say("李四")
    await citizen.say("13800000001")
    done = await citizen.say("1")
    assert "谢谢您的意见建议" in done
    async with runtime.db.session() as session:
        return (await session.scalars(select(Case.code).where(Case.kind == "suggestion"))).one()


async def walk(runtime: Minyi, code: str, *steps: Progress) -> None:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step in steps:
            await record_progress(uow, case, step, runtime.deadlines, utcnow(), runtime.surveys)
        await uow.commit()


async def count(runtime: Minyi, model: type, *where: object) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_a_suggestion_has_no_acceptance_deadline(sqlite_runtime: Minyi) -> None:
    code = await suggest(sqlite_runtime)
    async with UnitOfWork(sqlite_runtime.db, sqlite_runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        deadlines = case_document(case, ("", ""), [], None, ZoneInfo("Asia/Shanghai"))["deadlines"]
    assert deadlines["accept_by"] is None and deadlines["next"] is None
    assert deadlines["stages"] == []


async def test_a_suggestion_never_raises_deadline_warnings(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code = await suggest(runtime)
    later = utcnow() + timedelta(days=16)  # past the petition's 15 days
    assert await scan(runtime, later) == 0
    await walk(runtime, code, *STEPS[:2])  # accepted and assigned: no 1-2-3 stages either
    later = utcnow() + timedelta(days=91)
    assert await scan(runtime, later) == 0
    assert await count(runtime, OutboxEntry, OutboxEntry.type.like("deadline.%")) == 0


async def test_closing_a_suggestion_opens_no_survey_and_it_cannot_be_rated(
    sqlite_runtime: Minyi,
) -> None:
    runtime = sqlite_runtime
    code = await suggest(runtime)
    await walk(runtime, code, *STEPS)
    assert await count(runtime, Survey) == 0
    topics = Notification.topic.in_(("survey", "survey_sms"))
    assert await count(runtime, Notification, topics) == 0
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        assert await CaseLookups(uow).ratable_cases("webchat", "s-1") == []
    # A petition closed the same way is surveyed and ratable: the difference is the kind.
    petition = await Citizen(runtime, sender="p-1").file_a_matter()
    petition_code = petition.split("编号是 ")[1].split("，")[0]
    await walk(runtime, petition_code, *STEPS)
    assert await count(runtime, Survey) == 1
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        assert len(await CaseLookups(uow).ratable_cases("webchat", "p-1")) == 1


async def test_a_suggestions_outcome_is_told_counted_and_decided_once(
    sqlite_runtime: Minyi,
) -> None:
    from conversation.cases.lifecycle import IllegalTransition
    from storage.measures import measured

    runtime = sqlite_runtime
    code = await suggest(runtime)
    adopted = Progress("adopted", reason="已纳入明年的停车点建设计划。", outcome="partly")
    await walk(runtime, code, Progress("accepted"), adopted)
    async with runtime.db.session() as session:
        notice = await session.scalar(
            select(Notification).where(
                Notification.topic == "adopted", Notification.audience == "citizen"
            )
        )
    assert notice is not None and notice.payload["outcome"] == "partly"
    status = await Citizen(runtime, sender="s-1").say(code)
    assert "建议部分采纳：已纳入明年的停车点建设计划。" in status
    # Decided once; and a petition has no outcome to decide.
    for again in (code, None):
        if again is None:
            reply = await Citizen(runtime, sender="p-2").file_a_matter()
            again = reply.split("编号是 ")[1].split("，")[0]
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(again, for_update=True)
            assert case is not None
            with pytest.raises(IllegalTransition):
                await record_progress(uow, case, adopted, runtime.deadlines, utcnow())
    async with runtime.db.session() as session:
        now = utcnow()
        figures = await measured(session, now - timedelta(days=1), now, now=now, repeat_days=180)
    total = figures.total
    assert (total.suggestions_received, total.suggestions_partly_adopted) == (1, 1)
    assert (total.suggestions_adopted, total.suggestions_not_adopted) == (0, 0)
    assert (total.cases, total.petitions) == (2, 1)  # the suggestion is in no measure
