"""Departments, routing and owners: the office's tree, the department from filing on, 交办 with
主办 and 协办, 退回 back to whoever routed it, and a department's cases by the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from conversation.cases.progress import InvalidProgress, Progress
from conversation.cases.routing import routed
from conversation.office import load_office
from conversation.office_text import OfficeConfigError
from storage.models import Notification

from .conftest import Citizen
from .memory_conversation import OnMemory

AUTH = {"Authorization": "Bearer test-token"}
OFFICE = load_office()
BUNDLED = (Path(__file__).parent.parent / "conversation" / "office.toml").read_text("utf-8")


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


# -- the office file ---------------------------------------------------------------------------


def test_the_office_file_declares_a_tree_and_a_department_per_category() -> None:
    tree = OFFICE.departments
    assert [d.name for d in tree.path("zjj")] == ["区人民政府", "区住建局"]
    assert OFFICE.route("housing", "楼上卫生间漏水，物业不管") == "zjj"
    assert OFFICE.route("city", "路灯坏了") == "cgj"
    # A street's place names beat the category's default: the matter is the street's.
    assert OFFICE.route("city", "城关街道幸福路的路灯坏了") == "chengguan-jd"
    assert OFFICE.route("nonsense", "什么都不是") == ""
    assert tree.resolve("区城管局") == tree.resolve("cgj") == "cgj"
    assert tree.name("cgj") == "区城管局" and tree.name("法院") == "法院"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            (
                'code = "zjj"\nname = "区住建局"\nparent = "district"',
                'code = "zjj"\nname = "区住建局"\nparent = "nowhere"',
            ),
            "not a declared code",
        ),
        (
            ('key = "housing"\ndepartment = "zjj"', 'key = "housing"\ndepartment = "nope"'),
            "not a declared department",
        ),
        (
            (
                'code = "district"\nname = "区人民政府"',
                'code = "district"\nname = "区人民政府"\nparent = "xfj"',
            ),
            "own ancestor",
        ),
        (
            ('code = "cgj"\nname = "区城管局"', 'code = "cgj"\nname = "区住建局"'),
            "share one code or one name",
        ),
        (('targets = ["handling"] }', "targets = [] }"), "targets must list"),
        (('readers = ["shuji"]', "readers = []"), "readers must list"),
    ],
)
def test_a_wrong_office_file_is_refused_with_the_reason(
    tmp_path: Path, change: tuple[str, str], complaint: str
) -> None:
    old, new = change
    assert old in BUNDLED
    path = tmp_path / "office.toml"
    path.write_text(BUNDLED.replace(old, new, 1), "utf-8")
    with pytest.raises(OfficeConfigError, match=complaint):
        load_office(path)


def test_an_assignment_names_known_departments_by_code() -> None:
    step = routed(
        Progress("assigned", department="区城管局", co_departments=("zjj", "cgj", "区住建局")),
        OFFICE.departments,
    )
    assert (step.department, step.co_departments) == ("cgj", ("zjj",))
    with pytest.raises(InvalidProgress, match="Unknown department '园林局'"):
        routed(Progress("assigned", department="园林局"), OFFICE.departments)
    # Where a redirected citizen should go is outside the office: free text.
    assert (
        routed(Progress("redirected", department="法院"), OFFICE.departments).department == "法院"
    )


# -- from filing on ------------------------------------------------------------------------------


async def test_a_filed_case_starts_at_its_categorys_department_on_memory() -> None:
    memory = OnMemory()
    await memory.citizen().file_a_matter()  # category 4: 城市管理与交通
    assert memory.only_case().department == "cgj"


async def test_a_filed_case_starts_at_its_categorys_department(client: TestClient) -> None:
    code = await _filed(client)
    case = await _case(client, code)
    assert (case["department"], case["co_departments"], case["owner"]) == ("cgj", [], "")
    assert case["level"] == 0 and case["mailbox"] == "" and case["outcome"] is None


# -- 交办, 协办, 退回 ------------------------------------------------------------------------------


async def test_lead_and_co_handling_departments_both_list_the_case(client: TestClient) -> None:
    code = await _filed(client)
    other = await _filed(client, sender="c2")
    await _step(client, code, {"type": "accepted", "staff": "wangfang"})
    case = await _step(
        client,
        code,
        {
            "type": "assigned",
            "department": "区住建局",
            "co_departments": ["cgj", "区生态环境分局"],
            "staff": "liu",
        },
    )
    assert case["department"] == "zjj" and case["co_departments"] == ["cgj", "sthj"]
    assert case["owner"] == "wangfang"  # the first to take it stays answerable (首问责任制)
    for department in ("zjj", "区生态环境分局"):
        assert await _listed(client, department) == [code], department
    # 区城管局 co-handles the one and leads the other (its category's default).
    assert await _listed(client, "cgj") == [code, other]
    assert await _listed(client, "scjg") == []
    response = await client.get("/api/v1/cases?department=园林局", headers=AUTH)
    assert response.status == 422 and "园林局" in (await response.json())["message"]
    response = await client.post(
        f"/api/v1/cases/{code}/events",
        json={"type": "assigned", "department": "园林局"},
        headers=AUTH,
    )
    assert response.status == 422


async def test_a_return_needs_a_reason_and_goes_back_to_who_routed_it(client: TestClient) -> None:
    code = await _filed(client)
    await _step(client, code, {"type": "accepted", "staff": "wangfang"})
    await _step(
        client,
        code,
        {"type": "assigned", "department": "zjj", "co_departments": ["cgj"], "staff": "liu"},
    )
    response = await client.post(
        f"/api/v1/cases/{code}/events", json={"type": "returned"}, headers=AUTH
    )
    assert response.status == 422 and "reason" in (await response.json())["message"]
    case = await _step(client, code, {"type": "returned", "reason": "不属于本单位职责"})
    # Back where it was before the 交办 (the category's department), the 协办 dropped.
    assert case["status"] == "returned" and case["department"] == "cgj"
    assert case["co_departments"] == [] and await _listed(client, "zjj") == []
    returned = case["events"][-1]
    assert returned["data"]["back_to"] == "liu" and returned["data"]["from_department"] == "zjj"
    runtime = client.server.app[MINYI]
    async with runtime.db.session() as session:
        alert = await session.scalar(select(Notification).where(Notification.topic == "returned"))
    assert alert is not None and alert.audience == "staff" and alert.payload["back_to"] == "liu"
    # Routed again from there, by someone else: a later return goes back to them.
    await _step(client, code, {"type": "assigned", "department": "scjg", "staff": "zhao"})
    case = await _step(client, code, {"type": "returned", "reason": "也不是我们的"})
    assert case["department"] == "cgj" and case["events"][-1]["data"]["back_to"] == "zhao"
    assert case["owner"] == "wangfang"


# -- helpers ---------------------------------------------------------------------------------------


async def _filed(client: TestClient, sender: str = "c1") -> str:
    reply = await Citizen(client.server.app[MINYI], sender=sender).file_a_matter()
    found = re.search(r"XF\d{8}-[0-9A-Z]{6}", reply)
    assert found, reply
    return found.group(0)


async def _case(client: TestClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/cases/{code}", headers=AUTH)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def _step(client: TestClient, code: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1/cases/{code}/events", json=body, headers=AUTH)
    answer: dict[str, Any] = await response.json()
    assert response.status == 200, answer
    return answer


async def _listed(client: TestClient, department: str) -> list[str]:
    response = await client.get("/api/v1/cases", params={"department": department}, headers=AUTH)
    assert response.status == 200, await response.text()
    return [case["code"] for case in (await response.json())["cases"]]
