"""The HTTP surface through the whole app: web chat, back-office API, health and metrics."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.relay import Relay

AUTH = {"Authorization": "Bearer test-token"}
SESSION = "S" * 24
CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


def chat_cookies(client: TestClient, session: str) -> dict[str, str]:
    """The cookie the server issued to the chat the test calls `session` (one client, many
    chats: each keeps its own cookie)."""
    chats: dict[str, dict[str, str]] = client.__dict__.setdefault("_chats", {})
    return chats.setdefault(session, {})


async def post_turn(client: TestClient, body: dict[str, Any], session: str = SESSION) -> Any:
    cookies = chat_cookies(client, session)
    client.session.cookie_jar.clear()  # another chat's cookie must not go along
    response = await client.post("/webchat/messages", json=body, cookies=cookies)
    cookies |= {name: morsel.value for name, morsel in response.cookies.items()}
    return response


async def turn(
    client: TestClient, text: str, session: str = SESSION, **extra: Any
) -> dict[str, Any]:
    response = await post_turn(client, {"text": text, **extra}, session)
    assert response.status == 200, await response.text()
    return await response.json()


async def file_over_webchat(client: TestClient, session: str = SESSION) -> str:
    for text in (
        "1",
        "2",
        "公司拖欠三个月工资不发，找老板也不理",
        "工业园3号",
        "跳过",
        "钱七",
        "13700137000",
    ):
        await turn(client, text, session)
    done = await turn(client, "1", session)
    code = CODE.search(done["replies"][0]["text"])
    assert code
    return code.group()


async def test_the_page_is_served(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200 and "text/html" in response.headers["Content-Type"]
    assert "/webchat/messages" in await response.text()


async def test_webchat_turn_returns_replies_with_choices(client: TestClient) -> None:
    response = await post_turn(client, {"event": "start"})
    data = await response.json()
    assert "您好" in data["replies"][0]["text"]
    assert {"key": "1", "label": "我要反映"} in data["replies"][0]["choices"]
    assert "类别" in (await turn(client, "1"))["replies"][-1]["text"]


async def test_webchat_location(client: TestClient) -> None:
    for text in ("1", "1", "物业不给修漏水的屋顶，已经三个月了"):
        await turn(client, text)
    response = await post_turn(client, {"location": {"lat": 39.9, "lng": 116.4, "label": "天安门"}})
    assert "照片" in (await response.json())["replies"][-1]["text"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "bad_json"),
        (b"[1,2]", 400, "bad_json"),
        (b'{"event": "hello"}', 422, "invalid"),
        (b'{"text": ""}', 422, "invalid"),
        (b'{"text": 5}', 422, "invalid"),
        (b'{"location": {"lat": 100, "lng": 0}}', 422, "invalid"),
        (b'{"text": "' + b"x" * 20000 + b'"}', 413, "too_large"),
    ],
)
async def test_webchat_bad_requests_say_why(
    client: TestClient, body: bytes, status: int, error: str
) -> None:
    response = await client.post(
        "/webchat/messages", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    data = await response.json()
    assert data["error"] == error and data["message"]
    assert (await client.get("/healthz")).status == 200  # and the server keeps serving


async def test_api_refuses_without_the_token(client: TestClient) -> None:
    for path in (
        "/api/v1/cases",
        "/api/v1/events",
        "/api/v1/cases/XF20261122-7K3M9Q",
        "/api/v1/openapi.json",
    ):
        response = await client.get(path)
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"
        response = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401


async def test_api_is_off_when_no_token_is_set(aiohttp_client: Any, sqlite_only: Settings) -> None:
    client = await aiohttp_client(create_app(sqlite_only.replace(api_token=None), workers=False))
    response = await client.get("/api/v1/cases", headers={"Authorization": "Bearer "})
    assert response.status == 401 and "MINYI_API_TOKEN" in (await response.json())["message"]


async def test_api_errors_are_json(client: TestClient) -> None:
    for path in (
        "/api/v1/cases/XF20261122-7K3M9Q",
        "/api/v1/cases/not-a-code",
        "/api/v1/nothing-here",
    ):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"
    for query in (
        "limit=0",
        "limit=x",
        "cursor=-1",
        "since=yesterday",
        "since=2026-11-22T08:00:00",
    ):
        response = await client.get(f"/api/v1/cases?{query}", headers=AUTH)
        assert response.status == 422, query
        assert (await response.json())["error"] == "invalid"
    # Past the largest row id (PostgreSQL's INTEGER): a 422, not the database's overflow (500).
    for path in ("/api/v1/events?after=2147483648", "/api/v1/cases?cursor=450003513182845"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 422, path
    assert (await client.get("/api/v1/events?after=2147483647", headers=AUTH)).status == 200
    # A method the route lacks: JSON too, and the Allow header RFC 9110 requires (schemathesis).
    response = await client.request("TRACE", "/api/v1/cases/XF20261122-7K3M9Q", headers=AUTH)
    assert response.status == 405 and (await response.json())["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(",")) >= {"GET"}


async def test_case_through_the_api_with_its_timeline(client: TestClient) -> None:
    code = await file_over_webchat(client)
    response = await client.get(f"/api/v1/cases/{code}", headers=AUTH)
    assert response.status == 200
    case = await response.json()
    assert case["code"] == code and case["status"] == "submitted" and case["category"] == "labour"
    assert case["contact"] == {"name": "钱七", "phone": "+8613700137000"}
    assert case["location"]["text"] == "工业园3号" and case["channel"] == "webchat"
    assert [e["type"] for e in case["events"]] == ["submitted"] and case["rating"] is None
    assert case["deadlines"]["next"]["kind"] == "accept"
    lower = await client.get(f"/api/v1/cases/{code.lower()}", headers=AUTH)
    assert lower.status == 200


async def test_case_list_pages_and_filters(client: TestClient) -> None:
    codes = [await file_over_webchat(client, session=f"session-number-{i:04d}") for i in range(5)]
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        response = await client.get(f"/api/v1/cases?limit=2&cursor={cursor}", headers=AUTH)
        page = await response.json()
        seen += [c["code"] for c in page["cases"]]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    assert seen == codes
    none = await (await client.get("/api/v1/cases?status=closed", headers=AUTH)).json()
    assert none["cases"] == []
    future = await (
        await client.get("/api/v1/cases?since=2999-01-01T00:00:00Z", headers=AUTH)
    ).json()
    assert future["cases"] == []


async def publish(client: TestClient) -> None:
    """What the relay worker does every second (the test app runs without workers)."""
    runtime = client.server.app[MINYI]
    await Relay(runtime.db, runtime.cipher, runtime.redis, runtime.settings.stream).publish_once()


async def test_events_feed_with_cursor(client: TestClient) -> None:
    codes = [await file_over_webchat(client, session=f"session-number-{i:04d}") for i in range(3)]
    assert (await (await client.get("/api/v1/events", headers=AUTH)).json())[
        "events"
    ] == []  # not yet published
    await publish(client)
    first = await (await client.get("/api/v1/events?limit=2", headers=AUTH)).json()
    assert [e["case"] for e in first["events"]] == codes[:2]
    assert all(e["type"] == "case.submitted" for e in first["events"])
    assert first["events"][0]["data"]["contact"]["phone"] == "+8613700137000"
    rest = await (await client.get(f"/api/v1/events?after={first['next']}", headers=AUTH)).json()
    assert [e["case"] for e in rest["events"]] == codes[2:]
    empty = await (await client.get(f"/api/v1/events?after={rest['next']}", headers=AUTH)).json()
    assert empty == {"events": [], "next": rest["next"]}


async def test_openapi_document(client: TestClient) -> None:
    doc = await (await client.get("/api/v1/openapi.json", headers=AUTH)).json()
    assert (
        doc["openapi"].startswith("3.")
        and "/cases/{code}" in doc["paths"]
        and "/events" in doc["paths"]
    )


async def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["ready"] is True
    await file_over_webchat(client)
    text = await (await client.get("/metrics")).text()
    assert 'minyi_messages_total{channel="webchat"} 8.0' in text
    assert 'minyi_cases{kind="petition",status="submitted"} 1.0' in text
    assert "minyi_turn_seconds_bucket" in text and "minyi_outbox_backlog 1.0" in text
    assert "minyi_sms_replies_waiting 0.0" in text
