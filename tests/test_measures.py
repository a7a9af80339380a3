"""The six measures (docs/measures.md) on a hand-built set of cases whose answers are known,
on SQLite and PostgreSQL: totals, by department (lead and co-handling), category and week,
the 红旗榜 rank, and the CSV; and the facts the lifecycle writes for them."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.api.stats import as_csv, rows_of
from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.desk.measures import league
from conversation.cases.measures import Counts, ranks
from conversation.cases.progress import Progress
from conversation.office import load_office
from storage.lifecycle import record_progress
from storage.measures import Measured
from storage.models import Case, CaseCoDepartment, Identity, utcnow
from storage.ratings import request_review
from storage.uow import UnitOfWork

from .conftest import Citizen

AUTH = {"Authorization": "Bearer test-token"}
CST = timezone(timedelta(hours=8))
DAY = timedelta(days=1)
WEEK1 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # a Monday
WEEK2 = datetime(2026, 3, 9, 9, 0, tzinfo=CST)
PERIOD = "from=2026-03-02T00:00:00%2B08:00&to=2026-03-16T00:00:00%2B08:00"


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


def petition(
    name: str,
    filed: datetime,
    department: str,
    category: str,
    *,
    decided: timedelta | None = None,  # after filing; the acceptance deadline is 15 days on
    replied: timedelta | None = None,  # after filing; the finish deadline is 60 days on
    closed: timedelta | None = None,
    rating: tuple[int, int] | None = None,  # (score, scale)
    **values: Any,
) -> dict[str, Any]:
    accept_due = filed + 15 * DAY
    finish_due = filed + 60 * DAY if decided is not None else None
    row: dict[str, Any] = {
        "code": name,
        "origin": f"test:{name}",
        "kind": "petition",
        "category": category,
        "description": name,
        "channel": "webchat",
        "department": department,
        "created_at": filed,
        "accept_due_at": accept_due,
        "finish_due_at": finish_due,
        "decided_at": filed + decided if decided is not None else None,
        "first_replied_at": filed + replied if replied is not None else None,
        "first_reply_due_at": finish_due if replied is not None else None,
        "closed_at": filed + closed if closed is not None else None,
        "repeat_checked_at": filed,
        "status": "closed" if closed is not None else "accepted",
    }
    if rating is not None:
        row["rating_score"], row["rating_scale"] = rating
        row["status"] = "rated"
    row.update(values)
    return row


def hand_built() -> list[dict[str, Any]]:
    late = 16 * DAY  # one day past the acceptance deadline
    return [
        # Decided, replied and closed on time, 满意: resolved the first time.
        petition("P1", WEEK1, "zjj", "housing", decided=DAY, replied=10 * DAY, closed=11 * DAY,
                 rating=(1, 3)),
        # Decided and replied late, 不满意.
        petition("P2", WEEK1, "zjj", "housing", decided=late, replied=80 * DAY, closed=81 * DAY,
                 rating=(3, 3)),
        # 基本满意 but a review was asked for; co-handled by 区住建局.
        petition("P3", WEEK2, "sthj", "environment", decided=DAY, replied=5 * DAY,
                 closed=6 * DAY, rating=(2, 3), review_requested_at=WEEK2 + 20 * DAY),
        # Closed unrated; the same matter was filed again two days later (P5).
        petition("P4", WEEK2, "sthj", "environment", decided=DAY, replied=DAY, closed=DAY),
        # The repeat: never decided and past its 15 days.
        petition("P5", WEEK2 + 3 * DAY, "sthj", "environment", repeat_level=2),
        # Not decided, still within its 15 days (as if filed today), not compared for repeats.
        petition("P6", WEEK1, "", "city", accept_due_at=utcnow() + 5 * DAY,
                 repeat_checked_at=None),
        # Decided on time; its finish deadline passed without a reply.
        petition("P7", WEEK1, "zjj", "housing", decided=DAY),
        # On five levels, 4 is 不满意.
        petition("P8", WEEK2, "sthj", "environment", decided=DAY, replied=DAY, closed=DAY,
                 rating=(4, 5)),
        # Filed again (P10) long after the repeat window counted from its closing.
        petition("P9", WEEK1, "cgj", "city", decided=DAY, replied=2 * DAY, closed=3 * DAY),
        # Outside the period: P9's late repeat, and an unhappy case a month before.
        petition("P10", datetime(2026, 11, 1, tzinfo=CST), "cgj", "city", repeat_level=2),
        petition("P11", WEEK1 - 30 * DAY, "zjj", "housing", decided=DAY, replied=DAY,
                 closed=DAY, rating=(3, 3)),
        # A suggestion, adopted and (wrongly) rated unhappy: it counts in no measure.
        {**petition("S1", WEEK1, "zjj", "housing", decided=DAY, replied=DAY, closed=DAY,
                    rating=(3, 3)), "kind": "suggestion", "outcome": "adopted"},
    ]  # fmt: skip


async def build(client: TestClient) -> None:
    runtime = client.server.app[MINYI]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        identity = Identity(channel="webchat", external_id="measures")
        uow.session.add(identity)
        await uow.session.flush()
        ids: dict[str, int] = {}
        for row in hand_built():
            case = Case(identity_id=identity.id, **row)
            uow.session.add(case)
            await uow.session.flush()
            ids[row["code"]] = case.id
        for code, first in (("P5", "P4"), ("P10", "P9")):
            # As the repeat watch links them (storage/repeats.py).
            repeat, earlier = await uow.cases.by_code(code), await uow.cases.by_code(first)
            assert repeat is not None and earlier is not None
            repeat.repeat_of, earlier.refiled_at = ids[first], repeat.created_at
        uow.session.add(CaseCoDepartment(case_id=ids["P3"], department="zjj"))
        await uow.commit()


def measures(row: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {
        name: (m["numerator"], m["denominator"], m["rate"]) for name, m in row["measures"].items()
    }


async def test_the_six_measures_on_known_cases(client: TestClient) -> None:
    await build(client)
    response = await client.get(f"/api/v1/stats?{PERIOD}", headers=AUTH)
    assert response.status == 200, await response.text()
    total = (await response.json())["total"]
    assert (total["cases"], total["petitions"], total["suggestions_received"]) == (10, 9, 1)
    assert total["suggestions_adopted"] == 1
    assert measures(total) == {
        "satisfaction_rate": (2, 4, 0.5),  # P1, P3 of P1 P2 P3 P8
        "participation_rate": (4, 6, 0.6667),  # rated of closed P1 P2 P3 P4 P8 P9
        "on_time_acceptance_rate": (6, 8, 0.75),  # P2 late, P5 overdue; P6 not due yet
        "on_time_reply_rate": (5, 7, 0.7143),  # P2 late, P7 overdue unreplied
        "first_time_resolution_rate": (2, 6, 0.3333),  # P1, P9
        "repeat_rate": (1, 8, 0.125),  # P5; P6 not compared yet
    }
    assert total["satisfaction_rate"] == 0.5 and total["repeat_rate"] == 0.125


async def test_by_department_counts_lead_and_co_handling_and_ranks(client: TestClient) -> None:
    await build(client)
    body = await (await client.get(f"/api/v1/stats?{PERIOD}&by=department", headers=AUTH)).json()
    rows = {row["key"]: row for row in body["groups"]}
    housing, environment, city = rows["zjj"], rows["sthj"], rows["cgj"]
    assert housing["label"] == "区住建局"
    assert (housing["cases"], housing["petitions"]) == (5, 4)  # P1 P2 P7 S1, and P3 co-handled
    assert measures(housing)["satisfaction_rate"] == (2, 3, 0.6667)
    assert measures(housing)["on_time_reply_rate"] == (2, 4, 0.5)
    assert measures(environment)["satisfaction_rate"] == (1, 2, 0.5)
    assert measures(environment)["repeat_rate"] == (1, 4, 0.25)
    assert city["satisfaction_rate"] is None and city["first_time_resolution_rate"] == 1.0
    assert (housing["rank"], environment["rank"], city["rank"]) == (1, 2, 3)
    assert rows[""]["rank"] is None and rows[""]["cases"] == 1  # no department: not ranked
    # Declared units without cases are on the board, tied at the bottom.
    assert rows["mzj"]["cases"] == 0 and rows["mzj"]["rank"] == rows["rsj"]["rank"] == 4
    # The district heads the tree: its row is its whole subtree, each case once (P3 is led by
    # one bureau and co-handled by another), ranked alone on its level; the bureaus below it.
    district = body["groups"][0]
    assert (district["key"], district["level"], district["rank"]) == ("district", 1, 1)
    assert district["cases"] == 9  # all but P6, which has no department yet
    assert [(row["level"], row["rank"]) for row in body["groups"]][1:4] == [(2, 1), (2, 2), (2, 3)]
    assert body["total"]["cases"] == 10  # each case once, co-handled or not


async def test_by_category_and_by_week(client: TestClient) -> None:
    await build(client)
    body = await (await client.get(f"/api/v1/stats?{PERIOD}&by=category", headers=AUTH)).json()
    rows = {row["key"]: row for row in body["groups"]}
    assert rows["housing"]["label"] == "住房与物业" and rows["housing"]["cases"] == 4
    assert rows["environment"]["cases"] == 4 and rows["city"]["cases"] == 2
    body = await (await client.get(f"/api/v1/stats?{PERIOD}&by=week", headers=AUTH)).json()
    weeks = [(row["key"], row["cases"]) for row in body["groups"]]
    assert weeks == [("2026-03-02", 6), ("2026-03-09", 4)]
    assert all(isinstance(row["rank"], int) for row in body["groups"])


async def test_csv_carries_the_same_figures_for_excel(client: TestClient) -> None:
    await build(client)
    response = await client.get(f"/api/v1/stats?{PERIOD}&by=department&format=csv", headers=AUTH)
    assert response.status == 200 and response.content_type == "text/csv"
    body = await response.read()
    assert body.startswith("\ufeff".encode())
    lines = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    housing = next(line for line in lines if line["key"] == "zjj")
    assert (housing["label"], housing["rank"], housing["cases"]) == ("区住建局", "1", "5")
    assert (housing["satisfaction_rate"], housing["satisfied"], housing["rated"]) == (
        "0.6667",
        "2",
        "3",
    )
    district = next(line for line in lines if line["key"] == "district")
    assert (district["label"], district["rank"], district["cases"]) == ("区人民政府", "1", "9")
    total = lines[-1]
    assert (total["key"], total["label"], total["cases"]) == ("TOTAL", "合计", "10")
    assert (total["repeat_rate"], total["repeats"], total["repeat_checked"]) == ("0.125", "1", "8")
    for query in ("format=xml", "by=weather", "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"):
        assert (await client.get(f"/api/v1/stats?{query}", headers=AUTH)).status == 422, query


def test_ties_share_a_rank_and_the_next_is_skipped() -> None:
    good = Counts(rated=2, satisfied=2)
    tied = Counts(rated=4, satisfied=4)  # the same rates; more cases break no tie
    worse = Counts(rated=2, satisfied=1)
    unmeasured = Counts()
    assert ranks([worse, good, unmeasured, tied]) == [3, 1, 4, 1]
    # A later measure decides between equal satisfaction; fewer repeats rank higher.
    a = Counts(rated=1, satisfied=1, repeat_checked=4, repeats=1)
    b = Counts(rated=1, satisfied=1, repeat_checked=4, repeats=0)
    assert ranks([a, b]) == [2, 1]


async def test_the_lifecycle_writes_each_fact_once(client: TestClient) -> None:
    runtime = client.server.app[MINYI]
    reply = await Citizen(runtime, sender="facts").file_a_matter()
    code = reply.split("编号是 ")[1].split("，")[0]
    now = utcnow()
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step, at in (("accepted", now), ("replied", now + DAY), ("closed", now + DAY)):
            await record_progress(uow, case, Progress(step), runtime.deadlines, at)
        first_due = case.finish_due_at
        due = runtime.deadlines.review_decision_due(now + 2 * DAY)
        assert await request_review(uow, case, due, "webchat", now + 2 * DAY) == "requested"
        for step, at in (("accepted", now + 3 * DAY), ("replied", now + 4 * DAY)):
            await record_progress(uow, case, Progress(step), runtime.deadlines, at)
        await uow.commit()
    async with runtime.db.session() as session:
        case = (await session.scalars(select(Case).where(Case.code == code))).one()
    assert case.decided_at == now and case.first_replied_at == now + DAY
    assert case.first_reply_due_at == first_due and case.finish_due_at != first_due
    assert case.review_requested_at == now + 2 * DAY and case.replied_at == now + 4 * DAY


def test_each_level_of_the_department_tree_is_ranked_by_itself() -> None:
    """The bundled office: 区人民政府 (district) above fourteen bureaus and streets. The district
    row is ranked alone on its level, the bureaus among themselves; the desk's boards compare
    the level with the most units with cases."""
    office = load_office()
    assert office.departments.level("district") == 1 and office.departments.level("zjj") == 2
    assert office.departments.level("旧科室") == 0
    assert office.departments.subtrees() == {
        "district": frozenset(u.code for u in office.departments.units)
    }
    result = Measured(
        groups={
            "district": Counts(cases=6, petitions=6, closed=4, rated=4, satisfied=1),
            "zjj": Counts(cases=3, petitions=3, closed=2, rated=2, satisfied=2),
            "cgj": Counts(cases=2, petitions=2, closed=2, rated=2, satisfied=0),
            "": Counts(cases=1, petitions=1),
        }
    )
    rows = rows_of(result, "department", office)
    places = [(row.key, row.level, row.rank) for row in rows]
    assert places[:3] == [("district", 1, 1), ("zjj", 2, 1), ("cgj", 2, 2)]
    assert {rank for key, level, rank in places[3:-1]} == {3}  # the twelve without cases, tied
    assert places[-1] == ("", 0, None)
    assert (
        rows[0].to_json()["level"] == 1
        and "level" not in rows_of(result, "category", office)[0].to_json()
    )
    assert [row.key for row in league(rows)] == ["zjj", "cgj"]
    lines = list(csv.DictReader(io.StringIO(as_csv(result.total, rows).decode("utf-8-sig"))))
    assert [(line["key"], line["rank"], line["cases"]) for line in lines[:3]] == [
        ("district", "1", "6"),
        ("zjj", "1", "3"),
        ("cgj", "2", "2"),
    ]
