"""POST /api/v1/cases/{code}/events: the lifecycle, its refusals, idempotency and deadlines."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Notification, OutboxEntry

from .conftest import Citizen

AUTH = {"Authorization": "Bearer test-token"}
BODIES: dict[str, dict[str, Any]] = {
    "accepted": {"type": "accepted", "staff": "王芳"},
    "redirected": {
        "type": "redirected",
        "reason": "属于劳动争议，应申请劳动仲裁",
        "department": "区劳动人事争议仲裁委员会",
    },
    "assigned": {"type": "assigned", "department": "区城管局"},
    "returned": {"type": "returned", "reason": "不属于本单位职责"},
    "replied": {"type": "replied", "note": "路灯已于11月25日修复。"},
    "closed": {"type": "closed"},
    "extended": {"type": "extended", "reason": "需要多部门会商", "days": 20},
    "note": {"type": "note", "note": "已电话联系群众"},
}


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def new_case(client: TestClient, sender: str = "c1") -> str:
    runtime = client.server.app[MINYI]
    reply = await Citizen(runtime, sender=sender).file_a_matter()
    return reply.split("编号是 ")[1].split("，")[0]


async def post(
    client: TestClient, code: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/api/v1/cases/{code}/events", json=body, headers={**AUTH, **headers}
    )
    return response.status, await response.json()


async def walk(client: TestClient, code: str, steps: list[str]) -> None:
    for step in steps:
        status, body = await post(client, code, BODIES[step])
        assert status == 200, body


async def test_the_whole_lifecycle_lands_on_the_timeline(client: TestClient) -> None:
    code = await new_case(client)
    await walk(
        client,
        code,
        ["accepted", "assigned", "returned", "assigned", "note", "extended", "replied", "closed"],
    )
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    # The office's tree names it 区城管局; the case keeps its code.
    assert case["status"] == "closed" and case["department"] == "cgj"
    assert [e["type"] for e in case["events"]] == [
        "submitted",
        "accepted",
        "assigned",
        "returned",
        "assigned",
        "note",
        "extended",
        "replied",
        "closed",
    ]
    assert case["events"][1]["actor"] == "staff:王芳" and case["events"][2]["actor"] == "backoffice"
    runtime = client.server.app[MINYI]
    async with runtime.db.session() as session:
        types = list(await session.scalars(select(OutboxEntry.type).order_by(OutboxEntry.seq)))
        topics = list(
            await session.scalars(
                select(Notification.topic).where(Notification.audience == "citizen")
            )
        )
    assert types == ["case.submitted"] + ["case.updated"] * 8
    # The citizen hears these, and the closed case brings its survey (in the chat and by SMS).
    assert sorted(topics) == ["accepted", "closed", "extended", "replied", "survey", "survey_sms"]


async def test_required_fields_and_bad_bodies_answer_422(client: TestClient) -> None:
    code = await new_case(client)
    cases = [
        ({"type": "redirected", "reason": "x"}, "needs 'department'"),
        ({"type": "assigned"}, "needs 'department'"),
        ({"type": "replied"}, "needs 'note'"),
        ({"type": "approved"}, "'type' must be one of"),
        ({"type": "note", "note": "x", "notes": "y"}, "Unknown field"),
        ({"type": "note", "note": 5}, "must be text"),
        ({"type": "note", "note": "x" * 5001}, "longer than 5000"),
        ({"type": "extended", "reason": "r", "days": 31}, "from 1 to 30"),
        ({"type": "note", "note": "x", "days": 3}, "'extended' event only"),
    ]
    for body, message in cases:
        status, answer = await post(client, code, body)
        assert status == 422 and message in answer["message"], (body, answer)
    response = await client.post(f"/api/v1/cases/{code}/events", data=b"{not json", headers=AUTH)
    assert response.status == 422
    assert (await post(client, "XF20261122-ZZZZZZ", BODIES["accepted"]))[0] == 404
    response = await client.post(f"/api/v1/cases/{code}/events", json=BODIES["accepted"])
    assert response.status == 401


async def test_idempotency_key_makes_a_repeat_harmless(client: TestClient) -> None:
    code = await new_case(client)
    first = await client.post(
        f"/api/v1/cases/{code}/events",
        json=BODIES["accepted"],
        headers={**AUTH, "Idempotency-Key": "k-1"},
    )
    again = await client.post(
        f"/api/v1/cases/{code}/events",
        json=BODIES["accepted"],
        headers={**AUTH, "Idempotency-Key": "k-1"},
    )
    assert first.status == again.status == 200
    assert (
        again.headers.get("Idempotent-Replayed") == "true"
        and "Idempotent-Replayed" not in first.headers
    )
    case = await again.json()
    assert [e["type"] for e in case["events"]] == ["submitted", "accepted"]
    status, body = await post(client, code, BODIES["note"], **{"Idempotency-Key": "k-1"})
    assert status == 422 and body["error"] == "idempotency_key_reused"
    status, _ = await post(client, code, BODIES["accepted"], **{"Idempotency-Key": "k-2"})
    assert status == 409  # a new key is a new request: accepted twice is illegal


async def test_concurrent_repeats_with_one_key_record_one_event(client: TestClient) -> None:
    code = await new_case(client)
    answers = await asyncio.gather(
        *(post(client, code, BODIES["note"], **{"Idempotency-Key": "same"}) for _ in range(5))
    )
    assert all(status == 200 for status, _ in answers)
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    assert [e["type"] for e in case["events"]].count("note") == 1


async def test_deadlines_follow_the_law(client: TestClient) -> None:
    code = await new_case(client)
    submitted = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    created = datetime.fromisoformat(submitted["created_at"])
    accept_by = datetime.fromisoformat(submitted["deadlines"]["accept_by"])
    assert timedelta(days=15) <= accept_by - created < timedelta(days=16)
    _, accepted = await post(client, code, BODIES["accepted"])
    finish_by = datetime.fromisoformat(accepted["deadlines"]["finish_by"])
    assert timedelta(days=60) <= finish_by - created < timedelta(days=61)
    assert accepted["deadlines"]["next"]["kind"] == "finish"
    _, assigned = await post(client, code, BODIES["assigned"])
    assert [s["name"] for s in assigned["deadlines"]["stages"]] == [
        "联系群众",
        "见面沟通",
        "办结或报告进展",
    ]
    _, noted = await post(client, code, {"type": "note", "note": "已电话联系", "stage": "联系群众"})
    assert (
        noted["deadlines"]["stages"][0]["met_at"] and not noted["deadlines"]["stages"][1]["met_at"]
    )
    _, extended = await post(client, code, BODIES["extended"])
    assert datetime.fromisoformat(extended["deadlines"]["finish_by"]) - finish_by == timedelta(
        days=20
    )
    assert (
        extended["deadlines"]["extended_days"] == 20
        and extended["deadlines"]["extension_reason"] == "需要多部门会商"
    )
    status, body = await post(client, code, {"type": "extended", "reason": "again"})
    assert status == 409 and "one extension" in body["message"]
    _, replied = await post(client, code, BODIES["replied"])
    review_by = datetime.fromisoformat(replied["deadlines"]["review_by"])
    assert (
        timedelta(days=30)
        <= review_by - datetime.fromisoformat(replied["updated_at"])
        < timedelta(days=31)
    )
