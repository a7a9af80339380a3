"""The daily rollup of the measures (storage/rollup.py) answers exactly as counting every case
does: randomised hand-built cases on SQLite and PostgreSQL, every grouping and the CSV, periods
with partial days at their edges in the office's zone, before and after the facts change
(through the lifecycle, a rating, a new department, a co-handling one, a repeat filed) and as
the clock moves past open cases' deadlines."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, func, select, update

from bot.api.stats import as_csv, rows_of
from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from conversation.cases.progress import Progress
from storage.lifecycle import record_progress
from storage.measures import Measured, keep_rollup_up, measured
from storage.models import (
    Case,
    CaseCoDepartment,
    Identity,
    StatsDirty,
    StatsRollup,
    StatsRollupDay,
)
from storage.rollup import HORIZON, Shape, newest_day
from storage.uow import UnitOfWork

DAY = timedelta(days=1)
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")  # daylight saving: days of 23 and 25 hours
BEGIN = datetime(2025, 1, 1, tzinfo=SHANGHAI)
SPAN = 420  # days of filings
NOW = BEGIN + (SPAN + 5) * DAY
DEPARTMENTS = ("district", "zjj", "cgj", "xfj", "chengguan-jd", "", "旧科室")
CATEGORIES = ("housing", "city", "environment", "")
GROUPINGS = ("", "department", "category", "week", "channel")
REPEAT_DAYS = 180


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


def maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else None


def random_case(rng: random.Random, n: int) -> dict[str, Any]:
    filed = BEGIN + timedelta(seconds=rng.randrange(SPAN * 86400))
    if rng.random() < 0.05:  # a few exactly at a local midnight, the edge of a day
        filed = filed.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    suggestion = rng.random() < 0.1
    decided = maybe(rng, 0.8, filed + timedelta(hours=rng.randrange(1, 40 * 24)))
    # Some are accepted late and long: their finish deadline runs past the horizon.
    finish_due = None
    if decided is not None:
        finish_due = decided + (60 + rng.choice((0, 0, 30, 150))) * DAY
    replied = (
        maybe(rng, 0.7, decided + timedelta(hours=rng.randrange(1, 120 * 24))) if decided else None
    )
    closed = maybe(rng, 0.8, replied + DAY) if replied else None
    rated = closed is not None and rng.random() < 0.6
    scale = rng.choice((3, 5))
    return {
        "code": f"R{n}",
        "origin": f"rollup:{n}",
        "kind": "suggestion" if suggestion else "petition",
        "category": rng.choice(CATEGORIES),
        "description": "路灯坏了",
        "channel": rng.choice(("wechat", "sms", "webchat")),
        "department": rng.choice(DEPARTMENTS),
        "created_at": filed,
        "accept_due_at": filed + 15 * DAY,
        "decided_at": decided,
        "finish_due_at": finish_due,
        "first_replied_at": replied,
        "first_reply_due_at": finish_due if replied else None,
        "closed_at": closed,
        "rating_score": rng.randint(1, scale) if rated else None,
        "rating_scale": scale if rated else None,
        "review_requested_at": maybe(rng, 0.1, closed + 2 * DAY) if closed else None,
        "repeat_checked_at": maybe(rng, 0.8, filed + DAY),
        "refiled_at": maybe(rng, 0.1, filed + rng.randrange(1, 400) * DAY),
        "outcome": rng.choice(("", "adopted", "partly", "not_adopted")) if suggestion else "",
        "status": "closed" if closed else "accepted" if decided else "submitted",
    }


async def fill(client: TestClient, rng: random.Random, count: int) -> list[int]:
    runtime = client.server.app[MINYI]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        identity = Identity(channel="webchat", external_id="rollup")
        uow.session.add(identity)
        await uow.session.flush()
        cases = [Case(identity_id=identity.id, **random_case(rng, n)) for n in range(count)]
        uow.session.add_all(cases)
        await uow.session.flush()
        ids = [case.id for case in cases]
        for case in cases:
            if rng.random() < 0.08:
                case.repeat_of = rng.choice(ids)
            if rng.random() < 0.15:
                for code in rng.sample(("zjj", "cgj", "chengguan-jd", "xfj"), rng.randint(1, 2)):
                    if code != case.department:
                        uow.session.add(CaseCoDepartment(case_id=case.id, department=code))
        await uow.commit()
    return ids


def periods(rng: random.Random, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Whole local days, and instants inside days (partial days at both edges)."""
    chosen = [(BEGIN - 3 * DAY, NOW), (BEGIN + 40 * DAY, BEGIN + 400 * DAY)]
    for _ in range(4):
        first = BEGIN + rng.randrange(-5, SPAN) * DAY
        start = datetime.combine(first.astimezone(tz).date(), datetime.min.time(), tz)
        length = rng.randrange(1, SPAN) * DAY
        chosen.append((start, start + length))
        chosen.append((start + timedelta(hours=rng.randrange(1, 23)),
                       start + length + timedelta(minutes=rng.randrange(1, 1400))))  # fmt: skip
    return chosen


async def both(
    client: TestClient, start: datetime, end: datetime, by: str, now: datetime, tz: ZoneInfo
) -> tuple[Measured, Measured]:
    runtime = client.server.app[MINYI]
    subtrees = runtime.office.departments.subtrees()
    answers = []
    for rollup in (False, True):
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            answers.append(
                await measured(
                    uow.session,
                    start,
                    end,
                    by,
                    now=now,
                    repeat_days=REPEAT_DAYS,
                    tz=tz,
                    subtrees=subtrees,
                    rollup=rollup,
                )
            )
            await uow.commit()
    return answers[0], answers[1]


async def same_answers(
    client: TestClient, rng: random.Random, now: datetime, tz: ZoneInfo = SHANGHAI
) -> None:
    office = client.server.app[MINYI].office
    for start, end in periods(rng, tz):
        for by in GROUPINGS:
            direct, rolled = await both(client, start, end, by, now, tz)
            where = f"{start.isoformat()}..{end.isoformat()} by {by!r} at {now.isoformat()}"
            assert rolled.total == direct.total, where
            assert rolled.groups == direct.groups, where
            assert as_csv(rolled.total, rows_of(rolled, by, office)) == as_csv(
                direct.total, rows_of(direct, by, office)
            ), where


async def rolled_days(client: TestClient) -> int:
    async with client.server.app[MINYI].db.session() as session:
        return await session.scalar(select(func.count()).select_from(StatsRollupDay)) or 0


async def test_the_rollup_answers_as_the_cases_do_as_facts_change_and_time_passes(
    client: TestClient,
) -> None:
    rng = random.Random(18)
    ids = await fill(client, rng, 450)
    await same_answers(client, rng, NOW)
    assert await rolled_days(client) > 100, "the rollup was not used"
    async with client.server.app[MINYI].db.session() as session:
        assert await session.scalar(select(func.count()).select_from(StatsRollup))

    # Facts change on old, rolled-up days: every writer is caught (triggers on the cases).
    runtime = client.server.app[MINYI]
    old = sorted(ids)[:60]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        undecided = (
            await uow.session.scalars(
                select(Case).where(Case.id.in_(old), Case.decided_at.is_(None)).limit(3)
            )
        ).all()
        for case in undecided:  # 受理 through the lifecycle, long after filing
            await record_progress(
                uow, case, Progress("accepted"), runtime.deadlines, case.created_at + 30 * DAY
            )
        rows = (await uow.session.scalars(select(Case).where(Case.id.in_(old[1:5])))).all()
        cases = {case.id: case for case in rows}
        rated = cases[old[1]]  # a rating, given late
        rated.closed_at = rated.closed_at or rated.created_at + DAY
        rated.rating_score, rated.rating_scale = 3, 3
        cases[old[2]].department = "cgj"  # reassigned
        cases[old[3]].refiled_at = cases[old[3]].created_at + 2 * DAY  # the repeat watch's mark
        await uow.session.execute(update(Case).where(Case.id == old[4]).values(kind="suggestion"))
        uow.session.add(CaseCoDepartment(case_id=old[5], department="chengguan-jd"))
        await uow.session.flush()
        await uow.session.execute(
            delete(CaseCoDepartment).where(CaseCoDepartment.case_id == old[6])
        )
        await uow.commit()
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(StatsDirty))
    await same_answers(client, rng, NOW)

    # The clock moves: open cases' deadlines pass (and a clock set back is answered too).
    for later in (NOW + 20 * DAY, NOW + 200 * DAY, NOW + 3 * DAY, NOW - 100 * DAY):
        await same_answers(client, rng, later)


async def test_daylight_saving_days_and_a_new_zone(client: TestClient) -> None:
    """A zone with 23- and 25-hour days (SQLite counts those days by themselves); the rollup
    counted for Shanghai is started afresh for New York, and again for a changed tree."""
    rng = random.Random(7)
    await fill(client, rng, 250)
    await same_answers(client, rng, NOW, SHANGHAI)
    await same_answers(client, rng, NOW, NEW_YORK)
    runtime = client.server.app[MINYI]
    start, end = BEGIN, BEGIN + 300 * DAY
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        alone = await measured(uow.session, start, end, "department", now=NOW,
                               repeat_days=REPEAT_DAYS, tz=SHANGHAI, subtrees={}, rollup=True)  # fmt: skip
        await uow.commit()
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        direct = await measured(uow.session, start, end, "department", now=NOW,
                                repeat_days=REPEAT_DAYS, tz=SHANGHAI, subtrees={})  # fmt: skip
    assert alone.groups == direct.groups


def test_the_horizon_leaves_days_still_filling_to_the_live_count() -> None:
    # Filings of today and acceptance deadlines (15 days) change recent days all the time.
    assert timedelta(days=15) < HORIZON


async def test_the_job_counts_old_days_before_anyone_asks(client: TestClient) -> None:
    """`stats-rollup` fills the rollup a batch at a time until every old day is counted, then
    finds nothing to do; a question afterwards counts no day itself, and answers the same."""
    rng = random.Random(3)
    await fill(client, rng, 200)
    runtime = client.server.app[MINYI]
    office = runtime.office

    async def run_job(now: datetime) -> int:
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            left = await keep_rollup_up(uow.session, now=now, repeat_days=REPEAT_DAYS,
                                        tz=SHANGHAI, subtrees=office.departments.subtrees())  # fmt: skip
            await uow.commit()
        return left

    runs = 1
    while await run_job(NOW):
        runs += 1
        assert runs < 20, "the job does not get to the end"
    assert runs >= 2, "more days than one batch: the job must come back for the rest"
    async with runtime.db.session() as session:
        oldest = await session.scalar(select(func.min(Case.created_at)))
    first = oldest.astimezone(SHANGHAI).date()
    expected = (newest_day(NOW, Shape.of(SHANGHAI, REPEAT_DAYS, office.departments.subtrees())) - first).days + 1  # fmt: skip
    assert await rolled_days(client) == expected
    assert await run_job(NOW) == 0

    # A change on an old day is counted again by the job, not by the next question.
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        await uow.session.execute(update(Case).where(Case.id == min(
            (await uow.session.scalars(select(Case.id))).all())).values(department="cgj"))  # fmt: skip
        await uow.commit()
    assert await run_job(NOW) == 0
    async with runtime.db.session() as session:
        assert not await session.scalar(select(func.count()).select_from(StatsDirty))
    await same_answers(client, rng, NOW)
    assert "stats-rollup" in {job.name for job in runtime.jobs}
