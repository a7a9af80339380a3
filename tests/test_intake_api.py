"""POST /api/v1/cases: filing for a citizen (grid workers, staff, kiosks) like the chat files."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from conversation.catalog import ZH
from storage.models import ApiIdempotency, Case, Citizen, Identity, Notification, OutboxEntry

from .channels.sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app
from .conftest import Citizen as ChatCitizen

AUTH = {"Authorization": "Bearer test-token"}
PHONE = "13912345678"
BODY: dict[str, Any] = {
    "kind": "petition",
    "category": "city",
    "description": "幸福路12号门口的井盖松动了，电动车压过去很响，担心有人摔倒。",
    "location": {"text": "XX区幸福路12号", "lat": 31.2304, "lng": 121.4737},
    "contact": {"name": "李四", "phone": PHONE},
    "source": "grid:07",
    "department": "区城管局",
}


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


async def file(client: TestClient, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    response = await client.post("/api/v1/cases", json=body, headers={**AUTH, **headers})
    return response.status, await response.json()


async def rows(client: TestClient, model: Any) -> list[Any]:
    async with client.server.app[MINYI].db.session() as session:
        return list(await session.scalars(select(model)))


async def test_a_grid_worker_files_a_case_like_the_chat_does(client: TestClient) -> None:
    status, case = await file(client, BODY)
    assert status == 201, case
    assert case["channel"] == "api" and case["source"] == "grid:07" and not case["anonymous"]
    # Routed as asked, by name or code of the office's tree; the case keeps the code.
    assert case["department"] == "cgj" and case["status"] == "submitted"
    assert case["contact"] == {"name": "李四", "phone": "+8613912345678"}
    assert case["location"] == {"text": "XX区幸福路12号", "lat": 31.2304, "lng": 121.4737}
    assert case["answers"] == {"form": "filing"}
    assert case["deadlines"]["accept_by"] and case["deadlines"]["next"]["kind"] == "accept"
    assert [(e["type"], e["actor"]) for e in case["events"]] == [("submitted", "api:grid:07")]
    [entry] = await rows(client, OutboxEntry)
    assert entry.type == "case.submitted" and entry.case_code == case["code"]
    assert "contact" not in entry.data and entry.private_enc  # the contact only encrypted
    [stored] = await rows(client, Case)
    assert PHONE.encode() not in (stored.contact_phone_enc or b"")
    [identity] = await rows(client, Identity)
    assert (identity.channel, identity.external_id, identity.citizen_id) == ("api", "grid:07", None)
    [receipt] = await rows(client, Notification)
    assert (receipt.audience, receipt.topic) == ("citizen", "receipt")


async def test_every_wrong_field_is_named_at_once_with_the_chats_words(client: TestClient) -> None:
    body = {
        **BODY,
        "category": "potholes",
        "description": "太短",
        "contact": {"name": "12345", "phone": "12345"},
        "source": "",
        "answers": {"colour": "red"},
        "priority": "high",
    }
    status, answer = await file(client, body)
    assert status == 422 and answer["error"] == "invalid"
    fields = answer["fields"]
    assert set(fields) == {
        "category",
        "description",
        "contact.name",
        "contact.phone",
        "source",
        "answers.colour",
        "priority",
    }
    # The same sentences a citizen reads in the chat for the same mistakes.
    assert fields["contact.phone"] == ZH["err.phone"]
    assert fields["contact.name"] == ZH["err.name.digits"]
    assert fields["description"] == ZH["err.description.short"].format(min=10)
    assert "city" in fields["category"]
    assert await rows(client, Case) == []


async def test_types_and_the_forms_required_questions_are_checked(client: TestClient) -> None:
    status, answer = await file(
        client,
        {
            "description": 42,
            "location": {"lat": "north"},
            "contact": {},
            "anonymous": "yes",
            "source": "kiosk:lobby-1",
        },
    )
    assert status == 422
    assert set(answer["fields"]) == {
        "description",
        "location.lat",
        "location",
        "category",
        "contact.name",
        "contact.phone",
        "anonymous",
    }


async def test_an_idempotency_key_makes_a_retry_harmless(client: TestClient) -> None:
    first_status, first = await file(client, BODY, **{"Idempotency-Key": "grid07-0001"})
    again = await client.post(
        "/api/v1/cases", json=BODY, headers={**AUTH, "Idempotency-Key": "grid07-0001"}
    )
    assert first_status == 201 and again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await again.json())["code"] == first["code"]
    other = {**BODY, "description": BODY["description"] + "昨晚又有人差点摔倒。"}
    reused, refusal = await file(client, other, **{"Idempotency-Key": "grid07-0001"})
    assert reused == 422 and refusal["error"] == "idempotency_key_reused"
    fresh, second = await file(client, other, **{"Idempotency-Key": "grid07-0002"})
    assert fresh == 201 and second["code"] != first["code"]
    plain, third = await file(client, BODY)  # no key: every call is a new case
    assert plain == 201 and third["code"] not in (first["code"], second["code"])
    assert len(await rows(client, Case)) == 3 and len(await rows(client, ApiIdempotency)) == 2
    assert len([n for n in await rows(client, Notification) if n.topic == "receipt"]) == 3


async def test_anonymous_files_no_contact_and_refuses_one(client: TestClient) -> None:
    anonymous = {**BODY, "anonymous": True}
    status, answer = await file(client, anonymous)
    assert status == 422 and set(answer["fields"]) == {"contact"}
    del anonymous["contact"]
    status, case = await file(client, anonymous)
    assert status == 201 and case["contact"] == {"name": "", "phone": ""}
    assert case["anonymous"] is True
    [stored] = await rows(client, Case)
    assert stored.anonymous and stored.query_code_hash is None  # no chat to show a 查询码 in
    assert stored.contact_name_enc is None and stored.contact_phone_enc is None
    assert stored.citizen_id is None
    assert await rows(client, Citizen) == [] and await rows(client, Notification) == []


async def test_a_suggestion_follows_the_suggestion_form(client: TestClient) -> None:
    status, case = await file(
        client,
        {
            "kind": "suggestion",
            "description": "建议在幸福路口增设一个公交站，方便老人出行。",
            "source": "kiosk:lobby-1",
            "mailbox": "区长信箱",
        },
    )
    assert status == 201, case
    assert case["kind"] == "suggestion" and case["deadlines"]["accept_by"] is None
    # A letter to the 区长信箱 (by name or key) starts where that mailbox routes its letters.
    assert case["answers"] == {"form": "suggestion"}
    assert (case["mailbox"], case["department"]) == ("mayor", "xfj")


async def test_risk_words_page_staff_as_in_the_chat(client: TestClient) -> None:
    body = {**BODY, "description": "工资拖欠半年了，他说再不给钱就要跳楼，请尽快处理。"}
    status, case = await file(client, body)
    assert status == 201 and case["risk_words"] == ["跳楼"]
    staff = [n for n in await rows(client, Notification) if n.audience == "staff"]
    assert [(n.topic, n.payload) for n in staff] == [("risk", {"risk_words": ["跳楼"]})]


async def test_the_api_token_and_the_body_size_are_enforced(client: TestClient) -> None:
    response = await client.post("/api/v1/cases", json=BODY)
    assert response.status == 401
    response = await client.post(
        "/api/v1/cases", data=b"{" + b" " * (70 * 1024) + b"}", headers=AUTH
    )
    assert response.status == 413 and (await response.json())["error"] == "too_large"
    assert await rows(client, Case) == []


# -- The receipt by SMS ----------------------------------------------------------------------------


async def test_the_citizen_gets_the_code_by_sms_and_it_is_on_the_timeline(
    aiohttp_client: Any, aiohttp_server: Any, database_settings: Settings
) -> None:
    gateway = FakeProvider()
    server = await aiohttp_server(http_gateway_app(gateway))
    settings = database_settings.replace(
        sms_provider="http",
        sms_api_base=str(server.make_url("")).rstrip("/"),
        sms_webhook_secret=HTTP_SECRET,
    )
    client = await aiohttp_client(create_app(settings, workers=False))
    _, case = await file(client, BODY)
    runtime = client.server.app[MINYI]
    while await runtime.notifier.run_once():
        pass
    [sent] = gateway.requests
    assert sent.authentic and sent.fields["to"] == "+8613912345678"
    assert case["code"] in sent.fields["text"] and "是否受理" in sent.fields["text"]
    timeline = await (await client.get(f"/api/v1/cases/{case['code']}", headers=AUTH)).json()
    assert [e["type"] for e in timeline["events"]] == ["submitted", "notification.sent"]
    assert timeline["events"][1]["data"]["route"] == "sms"

    # Anonymous: nobody to tell of later steps, and no alarm for staff either.
    anonymous = {k: v for k, v in BODY.items() if k != "contact"} | {"anonymous": True}
    _, quiet = await file(client, anonymous)
    step = await client.post(
        f"/api/v1/cases/{quiet['code']}/events", json={"type": "accepted"}, headers=AUTH
    )
    assert step.status == 200
    while await runtime.notifier.run_once():
        pass
    timeline = await (await client.get(f"/api/v1/cases/{quiet['code']}", headers=AUTH)).json()
    assert timeline["events"][-1]["type"] == "notification.skipped"
    assert timeline["events"][-1]["data"]["why"] == "no mobile number on file"
    assert len(gateway.requests) == 1
    assert not [n for n in await rows(client, Notification) if n.audience == "staff"]


# -- Whose case it is in the chat ------------------------------------------------------------------


async def test_a_filed_case_is_the_citizens_own_only_once_they_proved_the_phone(
    client: TestClient,
) -> None:
    runtime = client.server.app[MINYI]
    _, filed = await file(client, {**BODY, "contact": {"name": "张三", "phone": "13800138000"}})
    chat = ChatCitizen(runtime, sender="web-1")
    # Typing the same number into a chat filing links the chat to that citizen but proves
    # nothing: the grid worker's case stays out of sight.
    await chat.file_a_matter()  # with 13800138000
    async with runtime.units() as uow:
        identity = await uow.people.find_identity("webchat", "web-1")
        citizen = await uow.people.find_citizen("+8613800138000")
        assert identity is not None and citizen is not None
        assert identity.citizen_id == citizen.id and identity.citizen_proven_at is None
    assert filed["code"] not in await chat.say("2")

    async with runtime.units() as uow:  # what the proof of the phone (a later change) records
        proven = await uow.people.find_identity("webchat", "web-1")
        assert proven is not None
        proven.citizen_proven_at = proven.created_at
        await uow.commit()
    assert filed["code"] in await chat.say("2")

    # Filing again with another number moves the link, and the proof does not go with it.
    await chat.say("菜单")
    for answer in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "XX区幸福路12号", "跳过"):
        await chat.say(answer)
    for answer in ("张三", "13700001111"):
        await chat.say(answer)
    assert "同一件事吗" in await chat.say("1")  # its own open lamp case: asked (重复信访)
    assert "编号" in await chat.say("2")  # a new matter
    async with runtime.units() as uow:
        moved = await uow.people.find_identity("webchat", "web-1")
        assert moved is not None and moved.citizen_proven_at is None
    assert filed["code"] not in await chat.say("2")


async def test_the_openapi_examples_file_as_documented(client: TestClient) -> None:
    document = await (await client.get("/api/v1/openapi.json", headers=AUTH)).json()
    post = document["paths"]["/cases"]["post"]
    assert set(post["responses"]) == {"201", "401", "413", "422"}
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        status, case = await file(client, example["value"])
        assert status == 201, case
    assert set(document["components"]["schemas"]["Filing"]["properties"]) == {
        "kind",
        "category",
        "description",
        "location",
        "contact",
        "anonymous",
        "source",
        "department",
        "mailbox",
        "answers",
        "language",
    }
