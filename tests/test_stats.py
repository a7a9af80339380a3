"""GET /api/v1/stats on a known set of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Survey
from storage.uow import UnitOfWork

from .conftest import Citizen
from .test_suggestions import suggest

AUTH = {"Authorization": "Bearer test-token"}
DAY = timedelta(days=1)


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def filed(client: TestClient, sender: str, phone: str, category: str) -> str:
    runtime = client.server.app[MINYI]
    citizen = Citizen(runtime, sender=sender)
    for text in (
        "1",
        category,
        "小区门口的路灯坏了一个多月，晚上很黑。",
        "幸福路",
        "跳过",
        "李四",
        phone,
    ):
        await citizen.say(text)
    reply = await citizen.say("1")
    return reply.split("编号是 ")[1].split("，")[0]


async def shape(client: TestClient, code: str, **values: Any) -> None:
    runtime = client.server.app[MINYI]
    surveys = values.pop("surveys", 0)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        for name, value in values.items():
            setattr(case, name, value)
        for _ in range(surveys):
            uow.session.add(
                Survey(case_id=case.id, status="open", scale=3, expires_at=datetime.now(UTC) + DAY)
            )
        await uow.commit()


async def test_rates_overall_and_by_category(client: TestClient) -> None:
    now = datetime.now(UTC)
    a = await filed(client, "a", "13800000001", "1")  # housing
    b = await filed(client, "b", "13800000002", "1")  # housing
    c = await filed(client, "c", "13800000001", "1")  # housing
    d = await filed(client, "d", "13800000003", "3")  # environment
    await shape(client, a, status="rated", closed_at=now, rating_score=1, rating_scale=3)
    await shape(client, b, status="rated", closed_at=now, rating_score=3, rating_scale=3)
    await shape(client, c, status="closed", closed_at=now, surveys=1)
    await shape(client, d, status="accepted")
    body = await (await client.get("/api/v1/stats", headers=AUTH)).json()
    total = body["total"]
    assert (total["cases"], total["petitions"], total["closed"]) == (4, 4, 3)
    assert (total["rated"], total["satisfied"]) == (2, 1)
    assert total["satisfaction_rate"] == 0.5 and total["participation_rate"] == 0.6667
    # a (满意) and c (not rated) were resolved the first time; b was rated 不满意.
    assert total["measures"]["first_time_resolution_rate"] == {
        "numerator": 2,
        "denominator": 3,
        "rate": 0.6667,
    }
    by = await (await client.get("/api/v1/stats?by=category", headers=AUTH)).json()
    groups = {g["key"]: g for g in by["groups"]}
    assert groups["housing"]["label"] == "住房与物业" and groups["housing"]["cases"] == 3
    assert (
        groups["environment"]["cases"] == 1 and groups["environment"]["satisfaction_rate"] is None
    )
    empty = await (
        await client.get(
            "/api/v1/stats?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=AUTH
        )
    ).json()
    assert empty["total"]["cases"] == 0 and empty["total"]["satisfaction_rate"] is None
    for query in (
        "by=weather",
        "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
        "from=yesterday",
    ):
        response = await client.get(f"/api/v1/stats?{query}", headers=AUTH)
        assert response.status == 422
    assert (await client.get("/api/v1/stats")).status == 401


async def test_five_level_scale_counts_the_top_three_as_satisfied(client: TestClient) -> None:
    codes = [await filed(client, f"s{i}", f"1380000001{i}", "2") for i in range(5)]
    for score, code in enumerate(codes, start=1):
        await shape(
            client,
            code,
            status="rated",
            closed_at=datetime.now(UTC),
            rating_score=score,
            rating_scale=5,
        )
    total = (await (await client.get("/api/v1/stats", headers=AUTH)).json())["total"]
    assert total["satisfied"] == 3 and total["satisfaction_rate"] == 0.6


async def test_metrics_expose_the_rates(client: TestClient) -> None:
    code = await filed(client, "m", "13800000009", "1")
    await shape(
        client, code, status="rated", closed_at=datetime.now(UTC), rating_score=2, rating_scale=3
    )
    text = await (await client.get("/metrics")).text()
    for measure in ("satisfaction", "participation", "first_time_resolution"):
        assert f'minyi_rate{{measure="{measure}"}} 1.0' in text, measure
    assert 'minyi_rate{measure="on_time_reply"} NaN' in text  # nothing was due yet


async def test_suggestions_count_apart_from_satisfaction_and_timeliness(
    client: TestClient,
) -> None:
    now = datetime.now(UTC)
    petition = await filed(client, "p", "13800000021", "1")
    suggestion = await suggest(client.server.app[MINYI], "s")
    for code, score in ((petition, 3), (suggestion, 1)):
        await shape(
            client,
            code,
            status="rated",
            closed_at=now,
            finish_due_at=now - DAY,
            rating_score=score,
            rating_scale=3,
            surveys=1,
        )
    total = (await (await client.get("/api/v1/stats", headers=AUTH)).json())["total"]
    assert (total["cases"], total["petitions"], total["suggestions_received"]) == (2, 1, 1)
    assert (total["closed"], total["rated"], total["satisfied"]) == (1, 1, 0)
    assert total["satisfaction_rate"] == 0.0 and total["participation_rate"] == 1.0
    # The petition's finish deadline passed unreplied; the suggestion's is not counted.
    assert total["measures"]["on_time_reply_rate"] == {
        "numerator": 0,
        "denominator": 1,
        "rate": 0.0,
    }
