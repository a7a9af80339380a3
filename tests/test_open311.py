"""Open311 GeoReport v2: every method in JSON and XML, its errors, on SQLite and PostgreSQL.

The element names and their order are the spec's (wiki.open311.org/GeoReport_v2), written out
here from its examples and read back element by element."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.open311 import listing
from conversation.catalog import ZH
from storage.models import Attachment, Case, Notification

from .open311_kit import (
    KEY,
    OTHER_KEY,
    POST_FIELDS,
    children,
    file_request,
    open311_client,
    open311_settings,
    text_of,
    xml_of,
)

BASE = "/open311/v2"
AUTH = {"Authorization": "Bearer test-token"}
SERVICE = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
ATTRIBUTE = ["variable", "code", "datatype", "required", "datatype_description", "order"]
REQUEST = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings, tmp_path: Path) -> TestClient:
    return await open311_client(aiohttp_client, open311_settings(database_settings, tmp_path))


async def cases(client: TestClient) -> list[Case]:
    async with client.server.app[MINYI].db.session() as session:
        return list(await session.scalars(select(Case)))


# -- discovery and services ------------------------------------------------------------------------


async def test_discovery_in_both_formats(client: TestClient) -> None:
    answer = await (await client.get(f"{BASE}/discovery.json")).json()
    assert list(answer) == ["changeset", "contact", "key_service", "endpoints"]
    [endpoint] = answer["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert datetime.fromisoformat(answer["changeset"]).utcoffset() == timedelta(hours=8)
    root = await xml_of(await client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery" and children(root) == list(answer)
    endpoints = root.find("endpoints")
    assert endpoints is not None and children(endpoints) == ["endpoint"]
    formats = endpoints.find("endpoint/formats")
    assert formats is not None and [f.text for f in formats] == endpoint["formats"]


async def test_services_are_the_offices_categories(client: TestClient) -> None:
    services = await (await client.get(f"{BASE}/services.json")).json()
    assert [s["service_code"] for s in services][:4] == ["housing", "labour", "environment", "city"]
    city = next(s for s in services if s["service_code"] == "city")
    assert list(city) == SERVICE
    assert city["service_name"] == "城市管理与交通" and city["metadata"] is True
    assert city["type"] == "realtime" and "路灯" in city["keywords"].split(",")
    root = await xml_of(await client.get(f"{BASE}/services.xml"))
    assert root.tag == "services" and set(children(root)) == {"service"}
    first = root[0]
    assert children(first) == SERVICE
    assert text_of(first, "service_code") == "housing" and text_of(first, "metadata") == "true"


async def test_a_service_definition_carries_the_forms_own_questions(client: TestClient) -> None:
    definition = await (await client.get(f"{BASE}/services/city.json")).json()
    assert definition["service_code"] == "city"
    floor, urgency = definition["attributes"]
    assert list(floor) == [*ATTRIBUTE, "description"]
    assert (floor["code"], floor["datatype"], floor["required"], floor["order"]) == (
        "floor",
        "string",
        False,
        1,
    )
    assert (urgency["code"], urgency["datatype"], urgency["required"]) == (
        "urgency",
        "singlevaluelist",
        True,
    )
    assert urgency["values"] == [{"key": "1", "name": "一般"}, {"key": "2", "name": "紧急"}]
    root = await xml_of(await client.get(f"{BASE}/services/city.xml"))
    assert root.tag == "service_definition" and children(root) == ["service_code", "attributes"]
    attributes = root.find("attributes")
    assert attributes is not None and children(attributes) == ["attribute", "attribute"]
    values = attributes[1].find("values")
    assert values is not None and children(values) == ["value", "value"]
    assert [(text_of(v, "key"), text_of(v, "name")) for v in values] == [
        ("1", "一般"),
        ("2", "紧急"),
    ]
    assert text_of(attributes[0], "variable") == "true"
    assert text_of(attributes[0], "required") == "false"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_unknown_things_answer_the_specs_404(client: TestClient, fmt: str) -> None:
    for path in (
        f"services/potholes.{fmt}",
        f"requests/XF20260101-7K3M9Q.{fmt}",
        f"requests/nonsense.{fmt}",
        f"tokens/{'0' * 32}.{fmt}",
        f"tokens/not-a-token.{fmt}",
        f"no-such-method.{fmt}",
    ):
        response = await client.get(f"{BASE}/{path}")
        assert response.status == 404, path
        assert [error["code"] for error in await _errors(response, fmt)] == [404]


# -- POST requests ---------------------------------------------------------------------------------


async def test_a_partner_files_a_request_as_the_chat_would(client: TestClient) -> None:
    response = await client.post(f"{BASE}/requests.xml", data=POST_FIELDS)
    assert response.status == 200
    root = await xml_of(response)
    assert root.tag == "service_requests" and children(root) == ["request"]
    item = root[0]
    assert children(item) == ["service_request_id", "token", "service_notice", "account_id"]
    code = text_of(item, "service_request_id")
    assert code and code in (text_of(item, "service_notice") or "")
    assert "是否受理" in (text_of(item, "service_notice") or "")
    assert text_of(item, "account_id") is None
    [case] = await cases(client)
    assert (case.code, case.channel, case.kind, case.category) == (
        code,
        "open311",
        "petition",
        "city",
    )
    assert case.source == "open311:" + hashlib.sha256(KEY.encode()).hexdigest()[:8]
    assert case.answers == {"form": "filing", "floor": "1楼", "urgency": "紧急"}
    assert (case.lat, case.lng, case.location_text) == (31.2304, 121.4737, "XX区幸福路12号")
    runtime = client.server.app[MINYI]
    async with runtime.units() as uow:
        assert uow.cases.contact(case) == ("李四", "+8613912345678")
        [photo] = list(await uow.session.scalars(select(Attachment)))
        assert photo.url == "https://photos.example.com/lamp.jpg" and photo.channel == "open311"
        receipts = list(await uow.session.scalars(select(Notification)))
        assert [(n.audience, n.topic) for n in receipts] == [("citizen", "receipt")]

    token = text_of(item, "token")
    found = await (await client.get(f"{BASE}/tokens/{token}.json")).json()
    assert found == [{"service_request_id": code, "token": token}]
    root = await xml_of(await client.get(f"{BASE}/tokens/{token}.xml"))
    assert root.tag == "service_requests" and children(root[0]) == ["service_request_id", "token"]


async def test_each_partner_key_files_under_its_own_source(client: TestClient) -> None:
    await file_request(client, api_key=OTHER_KEY)
    [case] = await cases(client)
    assert case.source == "open311:" + hashlib.sha256(OTHER_KEY.encode()).hexdigest()[:8]


async def test_without_name_or_phone_the_request_is_anonymous(client: TestClient) -> None:
    fields = {k: v for k, v in POST_FIELDS.items() if k not in ("first_name", "last_name", "phone")}
    response = await client.post(f"{BASE}/requests.json", data=fields)
    assert response.status == 200
    [case] = await cases(client)
    assert case.contact_name_enc is None and case.contact_phone_enc is None


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789abc", KEY + "x", KEY[:-1]])
async def test_a_bad_api_key_is_403_and_stores_nothing(
    client: TestClient, fmt: str, key: str | None
) -> None:
    fields = {k: v for k, v in POST_FIELDS.items() if k != "api_key"}
    if key is not None:
        fields["api_key"] = key
    response = await client.post(f"{BASE}/requests.{fmt}", data=fields)
    assert response.status == 403
    [error] = await _errors(response, fmt)
    assert error["code"] == 403 and "api_key" in error["description"]
    assert await cases(client) == []


async def test_posting_is_off_without_keys(
    aiohttp_client: Any, database_settings: Settings, tmp_path: Path
) -> None:
    settings = open311_settings(database_settings, tmp_path).replace(open311_keys=())
    client = await open311_client(aiohttp_client, settings)
    response = await client.post(f"{BASE}/requests.json", data={**POST_FIELDS, "api_key": ""})
    assert response.status == 403 and await cases(client) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_wrong_field_is_a_400_in_the_list(client: TestClient, fmt: str) -> None:
    fields = {
        **POST_FIELDS,
        "service_code": "potholes",
        "lat": "north",
        "description": "太短",
        "phone": "12345",
        "attribute[urgency]": "9",
        "attribute[colour]": "red",
        "media_url": "javascript:alert(1)",
    }
    response = await client.post(f"{BASE}/requests.{fmt}", data=fields)
    assert response.status == 400
    found = await _errors(response, fmt)
    assert {e["code"] for e in found} == {400}
    described = {e["description"].split(": ", 1)[0]: e["description"] for e in found}
    assert set(described) == {
        "service_code",
        "lat",
        "media_url",
        "description",
        "phone",
        "attribute[urgency]",
        "attribute[colour]",
    }
    # The citizen's own explanation of a wrong mobile, as the chat gives it.
    assert described["phone"] == "phone: " + ZH["err.phone"]
    assert await cases(client) == []


async def test_bodies_are_size_limited_and_utf8(client: TestClient) -> None:
    big = {**POST_FIELDS, "description": "路" * 40_000}
    response = await client.post(f"{BASE}/requests.json", data=big)
    assert response.status == 413 and [e["code"] for e in await response.json()] == [413]
    response = await client.post(
        f"{BASE}/requests.json",
        data=b"api_key=" + KEY.encode() + b"&description=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 400 and await cases(client) == []


# -- GET requests ----------------------------------------------------------------------------------


async def test_requests_list_and_one_request_in_both_formats(client: TestClient) -> None:
    filed = await file_request(client)
    code = filed["service_request_id"]
    [item] = await (await client.get(f"{BASE}/requests.json")).json()
    assert list(item) == REQUEST
    assert item["service_request_id"] == code and item["status"] == "open"
    assert item["status_notes"] == "已登记" and item["service_code"] == "city"
    assert item["service_name"] == "城市管理与交通" and item["agency_responsible"] is None
    assert (item["lat"], item["long"], item["address"]) == (31.2304, 121.4737, "XX区幸福路12号")
    assert item["media_url"] == "https://photos.example.com/lamp.jpg"
    requested = datetime.fromisoformat(item["requested_datetime"])
    assert requested.utcoffset() == timedelta(hours=8)  # the office's zone
    assert datetime.fromisoformat(item["expected_datetime"]) - requested < timedelta(days=16)
    assert await (await client.get(f"{BASE}/requests/{code}.json")).json() == [item]
    assert await (await client.get(f"{BASE}/requests/{code.lower()}.json")).json() == [item]

    for path in ("requests.xml", f"requests/{code}.xml"):
        root = await xml_of(await client.get(f"{BASE}/{path}"))
        assert root.tag == "service_requests" and children(root) == ["request"]
        element = root[0]
        assert children(element) == REQUEST
        for name in REQUEST:
            value = item[name]
            expected = None if value is None else str(value)
            assert text_of(element, name) == expected, name


async def test_status_department_and_notes_follow_the_case(client: TestClient) -> None:
    code = (await file_request(client))["service_request_id"]
    other = (await file_request(client, service_code="environment"))["service_request_id"]
    for step in (
        {"type": "accepted"},
        {"type": "assigned", "department": "区城管局"},
        {"type": "replied", "note": "路灯已于11月25日修复。"},
    ):
        response = await client.post(f"/api/v1/cases/{code}/events", json=step, headers=AUTH)
        assert response.status == 200
    [item] = await (await client.get(f"{BASE}/requests/{code}.json")).json()
    assert (item["status"], item["agency_responsible"]) == ("open", "区城管局")
    assert item["status_notes"] == "答复：路灯已于11月25日修复。"
    await client.post(
        f"/api/v1/cases/{code}/events", json={"type": "note", "note": "内部"}, headers=AUTH
    )
    await client.post(f"/api/v1/cases/{code}/events", json={"type": "closed"}, headers=AUTH)
    [item] = await (await client.get(f"{BASE}/requests/{code}.json")).json()
    assert (item["status"], item["status_notes"]) == ("closed", "办结")
    assert item["expected_datetime"] is None

    async def codes(query: str) -> list[str]:
        response = await client.get(f"{BASE}/requests.json?{query}")
        assert response.status == 200, await response.text()
        return [r["service_request_id"] for r in await response.json()]

    assert await codes("status=closed") == [code]
    assert await codes("status=open") == [other]
    assert await codes("status=open,closed") == [other, code]  # newest first
    assert await codes("service_code=environment") == [other]
    assert await codes("service_code=city,environment&status=closed") == [code]
    assert await codes(f"service_request_id={code},{other.lower()}") == [other, code]
    # A list of ids overrides every other filter, as the spec says.
    assert await codes(f"service_request_id={code}&status=open&service_code=housing") == [code]


async def test_dates_filter_and_default_to_90_days(client: TestClient) -> None:
    code = (await file_request(client))["service_request_id"]
    old = (await file_request(client))["service_request_id"]
    runtime = client.server.app[MINYI]
    async with runtime.units() as uow:
        case = await uow.cases.by_code(old)
        assert case is not None
        case.created_at = case.created_at - timedelta(days=120)
        await uow.commit()

    async def codes(query: str) -> list[str]:
        return [
            r["service_request_id"]
            for r in await (await client.get(f"{BASE}/requests.json?{query}")).json()
        ]

    assert await codes("") == [code]
    now = datetime.now().astimezone()
    start = (now - timedelta(days=130)).isoformat().replace("+", "%2B")
    end = (now - timedelta(days=100)).isoformat().replace("+", "%2B")
    assert await codes(f"start_date={start}&end_date={end}") == [old]
    day = (now - timedelta(days=120)).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert await codes(f"start_date={day}&end_date={day}") == [old]  # the office's whole day
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the office's today
    assert code in await codes(f"end_date={today}")


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("status=pending", "status"),
        ("start_date=yesterday", "start_date"),
        ("end_date=2026-11-22T08:00:00", "end_date"),  # no zone
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", "90 days"),
        ("start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z", "before"),
    ],
)
async def test_a_bad_query_is_a_400_in_the_list(
    client: TestClient, fmt: str, query: str, complaint: str
) -> None:
    response = await client.get(f"{BASE}/requests.{fmt}?{query}")
    assert response.status == 400
    [error] = await _errors(response, fmt)
    assert error["code"] == 400 and complaint in error["description"]


async def test_a_failure_is_the_specs_500_without_the_exception(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("connection to 10.0.0.7 refused: password=hunter2")

    monkeypatch.setattr(listing, "find", broken)
    for fmt in ("json", "xml"):
        response = await client.get(f"{BASE}/requests.{fmt}")
        assert response.status == 500
        body = await response.text()
        assert "hunter2" not in body and "RuntimeError" not in body and "<html" not in body
        [error] = await _errors(response, fmt)
        assert error["code"] == 500


async def _errors(response: Any, fmt: str) -> list[dict[str, Any]]:
    if fmt == "json":
        assert response.content_type == "application/json"
        return list(await response.json())
    root = await xml_of(response)
    assert root.tag == "errors" and set(children(root)) == {"error"}
    found = []
    for error in root:
        assert children(error) == ["code", "description"]
        found.append(
            {
                "code": int(text_of(error, "code") or 0),
                "description": text_of(error, "description") or "",
            }
        )
    return found
