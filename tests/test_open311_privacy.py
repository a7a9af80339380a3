"""No Open311 GET answer — any method, JSON or XML — carries a name, a phone or an e-mail of
anyone, whichever way their case came in and wherever they wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings

from .conftest import Citizen
from .open311_kit import POST_FIELDS, file_request, open311_client, open311_settings

AUTH = {"Authorization": "Bearer test-token"}
# Everything personal, in the forms people write it.
SECRETS = (
    "李四",
    "王小明",
    "张三",
    "13912345678",
    "139 1234 5678",
    "+8613912345678",
    "13700001111",
    "13800138000",
    "lisi@example.com",
    "wxm@example.org",
    "device-7",
    "account-7",
)


async def test_no_get_ever_shows_personal_data(
    aiohttp_client: Any, database_settings: Settings, tmp_path: Path
) -> None:
    client: TestClient = await open311_client(
        aiohttp_client, open311_settings(database_settings, tmp_path)
    )
    # Through Open311 with every personal field, and the same again in the description.
    posted = await file_request(
        client,
        description="我叫李四，电话 139 1234 5678，邮箱 lisi@example.com，幸福路的路灯坏了很久。",
        address_string="幸福路12号（李四家门口）",
    )
    # Through the intake API, the number written into the words as well.
    response = await client.post(
        "/api/v1/cases",
        json={
            "category": "environment",
            "description": "楼下饭店油烟太大，王小明让我转告，他的电话13700001111，邮箱wxm@example.org。",
            "location": {"text": "XX区幸福路8号"},
            "contact": {"name": "王小明", "phone": "13700001111"},
            "source": "grid:07",
            "answers": {"urgency": "1"},
        },
        headers=AUTH,
    )
    assert response.status == 201, await response.text()
    by_api = (await response.json())["code"]
    # Through the chat (张三, 13800138000), then answered by the back office in words that name him.
    chat = Citizen(client.server.app[MINYI], sender="web-9")
    for answer in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "XX区幸福路12号", "跳过"):
        await chat.say(answer)
    for answer in ("张三", "13800138000", "跳过", "1"):  # the office's own two questions too
        await chat.say(answer)
    assert "编号" in await chat.say("1")
    cases = await (await client.get("/api/v1/cases", headers=AUTH)).json()
    by_chat = next(c["code"] for c in cases["cases"] if c["channel"] == "webchat")
    for step in (
        {"type": "accepted"},
        {"type": "replied", "note": "张三您好，已联系您（13800138000），路灯已修复。"},
    ):
        answer = await client.post(f"/api/v1/cases/{by_chat}/events", json=step, headers=AUTH)
        assert answer.status == 200

    codes = [posted["service_request_id"], by_api, by_chat]
    paths = [
        "discovery",
        "services",
        "services/city",
        "requests",
        f"requests?service_request_id={','.join(codes)}",
        f"tokens/{posted['token']}",
        *(f"requests/{code}" for code in codes),
    ]
    bodies = []
    for path in paths:
        for fmt in ("json", "xml"):
            base, _, query = path.partition("?")
            answer = await client.get(f"/open311/v2/{base}.{fmt}" + (f"?{query}" if query else ""))
            assert answer.status == 200, path
            bodies.append((f"{path} ({fmt})", await answer.text()))
    listing = next(body for name, body in bodies if name == "requests (json)")
    assert all(code in listing for code in codes)  # all three are there, only without names
    for name, body in bodies:
        for secret in SECRETS:
            assert secret not in body, f"{secret!r} in {name}"
    assert "路灯" in listing and "***" in listing  # the words stay, what is personal goes
    assert POST_FIELDS["email"] not in listing


async def test_reports_on_officials_are_not_offered_or_shown(
    aiohttp_client: Any, database_settings: Settings, tmp_path: Path
) -> None:
    """《信访工作条例》: a report must not reach the people it is about; Open311's reads need no
    key, so a category the office file keeps out (`open311 = false`) is neither a service nor a
    request there, however it was filed."""
    client: TestClient = await open311_client(
        aiohttp_client, open311_settings(database_settings, tmp_path)
    )
    filed = await client.post(
        "/api/v1/cases",
        json={
            "category": "conduct",
            "description": "街道办窗口的工作人员办事推诿，三次都没办成，态度很差。",
            "location": {"text": "XX街道便民服务中心"},
            "contact": {"name": "赵六", "phone": "13911112222"},
            "source": "grid:07",
            "answers": {"urgency": "1"},
        },
        headers=AUTH,
    )
    assert filed.status == 201, await filed.text()
    code = (await filed.json())["code"]
    services = await (await client.get("/open311/v2/services.json")).json()
    assert "conduct" not in [s["service_code"] for s in services]
    assert (await client.get("/open311/v2/services/conduct.json")).status == 404
    listed = await (await client.get("/open311/v2/requests.json")).text()
    assert code not in listed and "推诿" not in listed
    assert (await client.get(f"/open311/v2/requests/{code}.json")).status == 404
