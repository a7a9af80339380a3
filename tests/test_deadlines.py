"""Legal deadlines and local stages, table-driven; the scheduler raises each once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice import deadline_watch
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.progress import Progress
from conversation.cases.stages import DeadlineRules, SlaStage
from storage.documents import case_document
from storage.lifecycle import record_progress
from storage.models import Case, Notification, OutboxEntry
from storage.uow import UnitOfWork

from .conftest import Citizen, sqlite_settings
from .test_case_rules import office_file

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Golden Week 2026 as an office would enter it (an example calendar, not an official one).
RULES = DeadlineRules(
    holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
    workdays=frozenset({date(2026, 9, 27), date(2026, 10, 10)}),
)
LAW = LegalDeadlines(SHANGHAI, RULES)


def at(day: str, clock: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00").replace(tzinfo=SHANGHAI)


def end(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59").replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("computation", "start", "expected"),
    [
        (
            "acceptance",
            at("2026-11-22"),
            end("2026-12-07"),
        ),  # 15 calendar days, the day itself not counted
        ("acceptance", at("2026-11-22", "23:59"), end("2026-12-07")),
        ("acceptance", at("2026-11-22", "00:30"), end("2026-12-07")),
        (
            "acceptance",
            datetime(2026, 11, 21, 16, 30, tzinfo=UTC),
            end("2026-12-07"),
        ),  # 00:30 on the 22nd in Beijing
        ("acceptance", at("2026-09-30"), end("2026-10-15")),  # holidays do not stop legal days
        ("finish", at("2026-11-22"), end("2027-01-21")),  # 60 days
        ("review", at("2026-12-31"), end("2027-01-30")),  # 30 days to ask for a review
        ("review_decision", at("2027-02-01"), end("2027-03-03")),
    ],
)
def test_legal_limits(computation: str, start: datetime, expected: datetime) -> None:
    compute = {
        "acceptance": LAW.acceptance_due,
        "finish": LAW.finish_due,
        "review": LAW.review_request_until,
        "review_decision": LAW.review_decision_due,
    }[computation]
    assert compute(start) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (at("2026-11-23"), 1, end("2026-11-24")),  # Monday → Tuesday
        (at("2026-11-27"), 1, end("2026-11-30")),  # Friday → Monday
        (at("2026-11-28"), 1, end("2026-11-30")),  # Saturday → Monday
        (at("2026-11-27"), 3, end("2026-12-02")),
        (at("2026-09-30"), 1, end("2026-10-08")),  # Golden Week skipped
        (at("2026-09-26"), 1, end("2026-09-27")),  # a Sunday worked instead (调休) counts
        (at("2026-10-09"), 1, end("2026-10-10")),  # and so does that Saturday
    ],
)
def test_working_day_stages(start: datetime, days: int, expected: datetime) -> None:
    assert LAW.stage_due(SlaStage("联系群众", days), start) == expected


def test_calendar_day_stage_and_extension_limits() -> None:
    assert LAW.stage_due(SlaStage("x", 2, working_days=False), at("2026-11-27")) == end(
        "2026-11-29"
    )
    assert LAW.extended(end("2027-01-21"), 30) == end("2027-02-20")
    for bad in (0, 31):
        with pytest.raises(ValueError):
            LAW.extended(end("2027-01-21"), bad)


async def scan(runtime: Minyi, now: datetime) -> int:
    """One run of the deadline watch, as the worker runs it."""
    return await deadline_watch.scan(
        lambda: UnitOfWork(runtime.db, runtime.cipher), runtime.deadlines, now
    )


async def _submitted_case(runtime: Minyi) -> str:
    reply = await Citizen(runtime, sender="deadline").file_a_matter()
    return reply.split("编号是 ")[1].split("，")[0]


async def _counts(runtime: Minyi) -> tuple[int, int, int]:
    async with runtime.db.session() as session:
        warnings = await session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.type == "deadline.warning")
        )
        missed = await session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.type == "deadline.missed")
        )
        alerts = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.topic.like("deadline.%"))
        )
    return int(warnings or 0), int(missed or 0), int(alerts or 0)


async def test_scheduler_warns_then_reports_a_miss_once_each_across_restarts(
    settings: Settings,
) -> None:
    async with open_minyi(settings) as runtime:
        code = await _submitted_case(runtime)
        async with runtime.db.session() as session:
            due = (await session.scalars(select(Case.accept_due_at))).one()
        assert due is not None
        assert await scan(runtime, due - timedelta(days=5)) == 0
        assert await scan(runtime, due - timedelta(hours=47)) == 1
        assert await scan(runtime, due - timedelta(hours=1)) == 0
        assert await _counts(runtime) == (1, 0, 1)
    async with open_minyi(settings) as restarted:  # a new process: marks are in the database
        assert await scan(restarted, due - timedelta(hours=1)) == 0
        assert await scan(restarted, due + timedelta(minutes=1)) == 1
        assert await scan(restarted, due + timedelta(days=3)) == 0
        assert await _counts(restarted) == (1, 1, 2)
        async with UnitOfWork(restarted.db, restarted.cipher) as uow:
            case = await uow.cases.by_code(code)
            assert case is not None
            types = [e.type for e in await uow.events.events(case)]
        assert types == ["submitted", "deadline.warning", "deadline.missed"]


async def test_a_miss_found_late_does_not_warn_after_the_fact(runtime: Minyi) -> None:
    await _submitted_case(runtime)
    async with runtime.db.session() as session:
        due = (await session.scalars(select(Case.accept_due_at))).one()
    assert due is not None
    assert await scan(runtime, due + timedelta(days=1)) == 1
    assert await _counts(runtime) == (0, 1, 1)


async def _deadline_events(runtime: Minyi) -> list[tuple[str, str]]:
    async with runtime.db.session() as session:
        entries = await session.scalars(
            select(OutboxEntry).where(OutboxEntry.type.like("deadline.%")).order_by(OutboxEntry.seq)
        )
        return [(e.data["deadline"], e.data["level"]) for e in entries]


async def _walk(runtime: Minyi, code: str, now: datetime, *steps: Progress) -> Case:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step in steps:
            await record_progress(uow, case, step, runtime.deadlines, now)
        await uow.commit()
    return case


async def test_stages_warn_and_an_extension_is_a_new_deadline(runtime: Minyi) -> None:
    code = await _submitted_case(runtime)
    now = datetime.now(UTC)
    steps = (Progress("accepted"), Progress("assigned", department="城管局"))
    case = await _walk(runtime, code, now, *steps)
    first_stage = datetime.fromisoformat(case.stages[0]["due_at"])
    raised = await scan(runtime, first_stage + timedelta(minutes=1))
    assert raised >= 1  # the first stage missed (later ones may be in their warning window)
    finish = case.finish_due_at
    assert finish is not None
    await _walk(runtime, code, now, Progress("extended", reason="会商", days=10))
    await scan(runtime, finish - timedelta(hours=1))  # old due time: no longer owed
    assert not any(kind == "finish" for kind, _ in await _deadline_events(runtime))
    await scan(runtime, finish + timedelta(days=10) - timedelta(hours=1))
    finish_levels = [level for kind, level in await _deadline_events(runtime) if kind == "finish"]
    assert finish_levels == ["warning"]


async def test_stages_from_submission_start_at_filing(tmp_path: Path) -> None:
    office = office_file(
        tmp_path,
        '{ name = "当日受理", days = 0, working_days = false, from = "submitted" },'
        '{ name = "四小时联系", hours = 4, from = "submitted" },'
        '{ name = "联系群众", days = 1, from = "assigned" }',
    )
    async with open_minyi(sqlite_settings(tmp_path, office_config=str(office))) as runtime:
        code = await _submitted_case(runtime)
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(code)
            assert case is not None
            document = case_document(case, ("", ""), [], None, SHANGHAI)
        start = datetime.fromisoformat(document["created_at"])
        deadlines = document["deadlines"]
        stages = {s["name"]: datetime.fromisoformat(s["due_at"]) for s in deadlines["stages"]}
        assert stages == {
            "当日受理": datetime.combine(
                start.astimezone(SHANGHAI).date(), time(23, 59, 59), SHANGHAI
            ),
            "四小时联系": start + timedelta(hours=4),
        }
        assert deadlines["next"]["kind"] == "accept"  # the law's limit, not a stage
        # The watch counts them like any other stage: the 4 hours warn in their last hour.
        assert await scan(runtime, start) == 0
        warned = await scan(runtime, start + timedelta(hours=3, minutes=1))
        assert warned >= 1 and ("stage:四小时联系", "warning") in await _deadline_events(runtime)


MONDAY = datetime(2026, 11, 23, 10, tzinfo=SHANGHAI)


async def test_a_fresh_assignment_does_not_page_staff(sqlite_runtime: Minyi) -> None:
    """1-2-3 from Monday 10:00: the 1-day stage ends Tuesday at midnight (38 h away, inside the
    configured 48 h); it warns with a quarter of its span left, not at once."""
    runtime = sqlite_runtime
    code = await _submitted_case(runtime)
    case = await _walk(
        runtime,
        code,
        MONDAY,
        Progress("accepted"),
        Progress("assigned", department="城管局"),
    )
    contact = datetime.fromisoformat(case.stages[0]["due_at"])
    assert contact - MONDAY == timedelta(hours=37, minutes=59, seconds=59)
    assert await scan(runtime, MONDAY + timedelta(minutes=1)) == 0
    quarter = (contact - MONDAY) / 4
    assert await scan(runtime, contact - quarter - timedelta(minutes=1)) == 0
    assert await scan(runtime, contact - quarter) == 1
    assert await _deadline_events(runtime) == [("stage:联系群众", "warning")]


async def test_an_hour_stage_warns_in_its_last_hour(tmp_path: Path) -> None:
    office = office_file(tmp_path, '{ name = "四小时联系", hours = 4, from = "assigned" }')
    async with open_minyi(sqlite_settings(tmp_path, office_config=str(office))) as runtime:
        code = await _submitted_case(runtime)
        steps = (Progress("accepted"), Progress("assigned", department="城管局"))
        await _walk(runtime, code, MONDAY, *steps)
        assert await scan(runtime, MONDAY + timedelta(minutes=1)) == 0
        assert await scan(runtime, MONDAY + timedelta(hours=2, minutes=59)) == 0
        assert await scan(runtime, MONDAY + timedelta(hours=3)) == 1
        assert await scan(runtime, MONDAY + timedelta(hours=4, minutes=1)) == 1
        assert await _deadline_events(runtime) == [
            ("stage:四小时联系", "warning"),
            ("stage:四小时联系", "missed"),
        ]


async def test_the_sixty_days_still_warn_two_days_ahead(tmp_path: Path) -> None:
    office = office_file(tmp_path, "")
    async with open_minyi(sqlite_settings(tmp_path, office_config=str(office))) as runtime:
        code = await _submitted_case(runtime)
        case = await _walk(runtime, code, MONDAY, Progress("accepted"))
        finish = case.finish_due_at
        assert finish is not None
        assert await scan(runtime, finish - timedelta(hours=49)) == 0
        assert await scan(runtime, finish - timedelta(hours=47)) == 1
        assert await _deadline_events(runtime) == [("finish", "warning")]
