"""The desk's case work: co-handling departments see and act on a case, a mailbox's readers
see its letters, a leader's 批示, a suggestion's outcome, the owner and the 督办 level."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from multidict import MultiDict
from sqlalchemy import select

from storage.models import Notification
from storage.staff import StaffAccounts

from .conftest import _hashes, file_case, page_csrf, signed_in, uow_of
from .test_cases import act, case_row

# Staff scoped to departments of the bundled office's tree, and a mailbox reader.
MORE = {
    "housing": ("住建局小陈", "staff", "zjj"),
    "roads2": ("城管局小吴", "staff", "cgj"),
    "env": ("环境分局小周", "staff", "sthj"),
    "shuji": ("书记信箱秘书", "staff", "scjg"),
}
CO_HANDLED: tuple[dict[str, Any], ...] = (
    {"type": "accepted"},
    {"type": "assigned", "department": "zjj", "co_departments": ["cgj"]},
)


async def as_(client: TestClient, username: str) -> None:
    client.session.cookie_jar.clear()  # a fresh browser for each person
    await signed_in(client, username)


@pytest.fixture
async def office(desk: TestClient) -> TestClient:
    async with uow_of(desk) as uow:
        accounts = StaffAccounts(uow.session)
        for username, (name, role, department) in MORE.items():
            await accounts.add(
                username, name, role, next(iter(_hashes.values())), department=department
            )
        await uow.commit()
    return desk


@pytest.mark.parametrize(("who", "sees"), [("housing", True), ("roads2", True), ("env", False)])
async def test_lead_and_co_handling_staff_see_the_case(
    office: TestClient, who: str, sees: bool
) -> None:
    code = await file_case(office, steps=CO_HANDLED)
    await as_(office, who)
    page = await office.get(f"/desk/cases/{code}")
    assert (page.status == 200) is sees
    listed = await (await office.get("/desk/cases")).text()
    assert (code in listed) is sees
    if sees:
        text = await page.text()
        assert "区住建局" in text and "区城管局" in text  # lead and 协办, by name
        response = await act(office, code, "note", note="已联系群众")
        assert response.status == 303, await response.text()


async def test_the_assignment_form_takes_a_lead_and_co_handling_departments(
    office: TestClient,
) -> None:
    code = await file_case(office, steps=({"type": "accepted"},))
    await as_(office, "intake")
    form = await (await office.get(f"/desk/cases/{code}?do=assigned")).text()
    assert 'name="co_departments" value="sthj"' in form and '<option value="zjj"' in form
    data = MultiDict(
        [
            ("csrf", await page_csrf(office)),
            ("seen", "accepted"),
            ("step", "assigned"),
            ("department", "zjj"),
            ("co_departments", "cgj"),
            ("co_departments", "sthj"),
        ]
    )
    response = await office.post(f"/desk/cases/{code}/act", data=data, allow_redirects=False)
    assert response.status == 303, await response.text()
    case = await case_row(office, code)
    assert case.department == "zjj" and case.owner == "intake" and case.routed_by == "intake"
    await as_(office, "env")
    assert (await office.get(f"/desk/cases/{code}")).status == 200
    # A department the office does not have is refused in words.
    await as_(office, "intake")
    response = await act(office, code, "returned", reason="需要重新分派")
    assert response.status == 303
    response = await act(office, code, "assigned", department="园林局")
    assert response.status == 422 and "没有这个承办单位" in await response.text()


async def test_a_mailboxs_reader_sees_its_letters(office: TestClient) -> None:
    code = await file_case(office)
    async with uow_of(office) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        case.mailbox = "secretary"
        await uow.commit()
    await as_(office, "shuji")  # of 区市场监管局, but reads the 区委书记信箱
    page = await office.get(f"/desk/cases/{code}")
    assert page.status == 200 and "区委书记信箱" in await page.text()
    await as_(office, "env")
    assert (await office.get(f"/desk/cases/{code}")).status == 404


async def test_a_leaders_instruction_reaches_the_citizen_and_the_handlers(
    office: TestClient,
) -> None:
    code = await file_case(office, steps=CO_HANDLED)
    await as_(office, "intake")
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "批示</button>" not in page  # a leader's step
    await as_(office, "boss")
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "批示</button>" in page
    response = await act(office, code, "instructed", note="请住建局牵头，一周内解决。")
    assert response.status == 303, await response.text()
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "李主任批示：请住建局牵头，一周内解决。" in page
    async with uow_of(office) as uow:
        rows = await uow.session.execute(select(Notification.audience, Notification.topic))
        topics = {(audience, topic) for audience, topic in rows}
    assert {("citizen", "instructed"), ("staff", "instructed")} <= topics
    assert (await case_row(office, code)).status == "assigned"  # a 批示 moves nothing


async def test_a_suggestions_outcome_is_recorded_once(office: TestClient) -> None:
    code = await file_case(office, steps=({"type": "accepted"},))
    petition_code = await file_case(office, steps=({"type": "accepted"},))
    async with uow_of(office) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        case.kind = "suggestion"
        await uow.commit()
    await as_(office, "intake")
    assert (
        "建议结果</button>" not in await (await office.get(f"/desk/cases/{petition_code}")).text()
    )
    assert "建议结果</button>" in await (await office.get(f"/desk/cases/{code}")).text()
    response = await act(office, code, "adopted", outcome="partly", reason="已纳入明年计划")
    assert response.status == 303, await response.text()
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "前台小刘：建议部分采纳。已纳入明年计划" in page and "建议结果</button>" not in page
    assert (await case_row(office, code)).outcome == "partly"


async def test_the_case_shows_its_owner_and_supervision_level(office: TestClient) -> None:
    code = await file_case(office, steps=CO_HANDLED)
    async with uow_of(office) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        case.level, case.owner = 2, "intake"
        await uow.commit()
    await as_(office, "housing")
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "2级 · 部门负责人督办" in page and "首问责任人" in page
    listed = await (await office.get("/desk/cases")).text()
    assert "2级 · 部门负责人督办" in listed


async def test_anothers_same_matter_is_offered_for_linking_never_merged(
    office: TestClient,
) -> None:
    first = await file_case(office, phone="+8613900000001")
    same = await file_case(
        office, phone="+8613900000002", description="小区门口的路灯坏了一个多月了，晚上很黑。"
    )
    unrelated = await file_case(
        office, phone="+8613900000003", description="光明路工地晚上十二点还在打桩，吵得睡不着。"
    )
    await as_(office, "intake")
    page = await (await office.get(f"/desk/cases/{same}")).text()
    assert "可能重复" in page and first in page and unrelated not in page
    response = await office.post(
        f"/desk/cases/{same}/link",
        data={"csrf": await page_csrf(office), "to": first},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    page = await (await office.get(f"/desk/cases/{same}?done=linked")).text()
    assert f"前台小刘：与 {first} 是同一事项（他人反映，重件）。" in page and "已关联" in page
    assert (await case_row(office, same)).repeat_of is None  # a link, not a merge
    assert (await case_row(office, first)).status == "submitted"


async def test_a_leader_raises_supervision_with_what_is_required(office: TestClient) -> None:
    code = await file_case(office, steps=CO_HANDLED)
    await as_(office, "intake")
    assert (
        'action="/desk/cases/' + code + '/escalate"'
        not in await (await office.get(f"/desk/cases/{code}")).text()
    )
    response = await office.post(
        f"/desk/cases/{code}/escalate",
        data={"csrf": await page_csrf(office), "reason": "快办"},
        allow_redirects=False,
    )
    assert response.status == 403
    await as_(office, "boss")
    for level in (1, 2, 3):
        response = await office.post(
            f"/desk/cases/{code}/escalate",
            data={"csrf": await page_csrf(office, f"/desk/cases/{code}"), "reason": "三日内办结"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        assert (await case_row(office, code)).level == level
    page = await (await office.get(f"/desk/cases/{code}")).text()
    assert "督办升至1级（承办单位督办）：李主任督办：三日内办结" in page
    assert "/escalate" not in page  # at the top: no more to raise
    response = await office.post(
        f"/desk/cases/{code}/escalate",
        data={"csrf": await page_csrf(office, f"/desk/cases/{code}"), "reason": "再督办"},
        allow_redirects=False,
    )
    assert response.status == 409 and "已是最高督办级别" in await response.text()
