"""Cases on the desk: who sees and does what, the buttons, conflicts, search and paging."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from storage.models import Case, CaseEvent, Notification, OutboxEntry
from storage.timeline import verify_chain

from .conftest import ASSIGN_PARKS, ASSIGN_ROADS, file_case, page_csrf, signed_in, uow_of


async def act(client: TestClient, code: str, step: str, **fields: Any) -> Any:
    """Press a step's button (and fill its small form) as a browser would, seeing the case now."""
    seen = fields.pop("seen", None) or (await case_row(client, code)).status
    data = {"csrf": await page_csrf(client), "seen": seen, "step": step}
    data.update({k: str(v) for k, v in fields.items()})
    return await client.post(f"/desk/cases/{code}/act", data=data, allow_redirects=False)


async def case_row(client: TestClient, code: str) -> Case:
    async with uow_of(client) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        await uow.commit()
        return case


# -- who sees what ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees_parks", "sees_roads"),
    [
        ("intake", True, True),  # staff without a department: the intake desk sees all
        ("parks", True, False),
        ("roads", False, True),
        ("boss", True, True),
        ("root", True, True),
    ],
)
async def test_each_role_sees_its_cases_in_the_list_and_one_by_one(
    desk: TestClient, who: str, sees_parks: bool, sees_roads: bool
) -> None:
    parks = await file_case(desk, steps=ASSIGN_PARKS)
    roads = await file_case(desk, steps=ASSIGN_ROADS)
    await signed_in(desk, who)
    listing = await (await desk.get("/desk/cases")).text()
    for code, sees in ((parks, sees_parks), (roads, sees_roads)):
        assert (f'href="/desk/cases/{code}"' in listing) == sees, (who, code)
        response = await desk.get(f"/desk/cases/{code}")
        assert response.status == (200 if sees else 404), (who, code)
        # Asking for the other department's cases by filter or search finds nothing either.
        for query in (f"q={code}", "department=园林局", "department=城管局"):
            found = await (await desk.get(f"/desk/cases?{query}")).text()
            if f'href="/desk/cases/{code}"' in found:
                assert sees, (who, query)


async def test_staff_of_one_department_cannot_act_on_anothers_case(desk: TestClient) -> None:
    roads = await file_case(desk, steps=ASSIGN_ROADS)
    await signed_in(desk, "parks")
    response = await desk.post(
        f"/desk/cases/{roads}/act",
        data={
            "csrf": await page_csrf(desk),
            "seen": "assigned",
            "step": "replied",
            "note": "已处理",
        },
        allow_redirects=False,
    )
    assert response.status == 404
    assert (await case_row(desk, roads)).status == "assigned"


@pytest.mark.parametrize(
    ("who", "step"), [("boss", "accepted"), ("root", "accepted"), ("root", "note")]
)
async def test_leaders_and_admins_cannot_walk_the_lifecycle(
    desk: TestClient, who: str, step: str
) -> None:
    code = await file_case(desk)
    await signed_in(desk, who)
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    assert ">受理<" not in page
    response = await act(desk, code, step, seen="submitted", note="看看")
    assert response.status == 403
    assert (await case_row(desk, code)).status == "submitted"


async def test_a_leader_may_add_a_note_under_their_name(desk: TestClient) -> None:
    code = await file_case(desk)
    await signed_in(desk, "boss")
    assert (await act(desk, code, "note", note="请尽快办理")).status == 303
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    assert "李主任备注：请尽快办理" in page


# -- the buttons ---------------------------------------------------------------------------------


async def test_walking_a_case_to_closed_with_the_buttons(desk: TestClient) -> None:
    code = await file_case(desk)
    await signed_in(desk, "intake")
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    assert ">受理<" in page and ">不予受理<" in page and ">办结<" not in page
    for step, fields in (
        ("accepted", {}),
        ("assigned", {"department": "cgj"}),  # the office's tree: 区城管局
        ("extended", {"reason": "需要多部门会商", "days": 20}),
        ("replied", {"note": "路灯已修复。"}),
        ("closed", {}),
    ):
        response = await act(desk, code, step, **fields)
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == f"/desk/cases/{code}?done={step}"
    page = await (await desk.get(f"/desk/cases/{code}?done=closed")).text()
    assert "已办结。" in page
    for sentence in (
        "前台小刘受理",
        "前台小刘交办给区城管局。",
        "前台小刘延期20天：需要多部门会商",
        "前台小刘答复：路灯已修复。",
        "前台小刘办结。",
        "留痕完整",
    ):
        assert sentence in page, sentence
    async with uow_of(desk) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None and case.status == "closed" and case.department == "cgj"
        assert case.owner == "intake"  # 首问责任制: the first to take a step answers for it
        events = await uow.events.events(case)
        assert verify_chain(code, events).ok
        staff_events = [e for e in events if e.actor.startswith("staff:")]
        assert [e.type for e in staff_events] == [
            "accepted",
            "assigned",
            "extended",
            "replied",
            "closed",
        ]
        assert all(
            e.actor == "staff:intake" and e.data["staff_name"] == "前台小刘" for e in staff_events
        )
        # The citizen hears exactly as when the back office reports: the same notices, the
        # same stream entries, a survey on closing.
        topics = await uow.session.scalars(
            select(Notification.topic).where(Notification.case_id == case.id)
        )
        assert {"accepted", "extended", "replied", "closed"} <= set(topics)
        updates = await uow.session.scalar(
            select(OutboxEntry.id).where(OutboxEntry.type == "case.updated").limit(1)
        )
        assert updates is not None


async def test_a_step_that_needs_words_opens_a_small_form(desk: TestClient) -> None:
    code = await file_case(desk, steps=ASSIGN_ROADS)
    await signed_in(desk, "roads")
    page = await (await desk.get(f"/desk/cases/{code}?do=replied")).text()
    assert "答复内容（会发给群众）" in page and ">确定<" in page
    empty = await act(desk, code, "replied", note="   ")
    assert empty.status == 422 and "请填写“答复内容（会发给群众）”" in await empty.text()
    long = await act(desk, code, "note", note="长" * 5001)
    assert long.status == 422 and "最多5000个字" in await long.text()
    days = await act(desk, code, "extended", reason="会商", days=31)
    assert days.status == 422 and "1到30" in await days.text()
    assert (await case_row(desk, code)).status == "assigned"


async def test_only_legal_steps_are_offered(desk: TestClient) -> None:
    code = await file_case(
        desk, steps=({"type": "redirected", "reason": "诉讼", "department": "法院"},)
    )
    await signed_in(desk, "intake")
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    for verb in ("受理", "交办", "答复", "办结", "延期", "退回"):
        assert f">{verb}<" not in page, verb
    assert ">备注<" in page


async def test_someone_else_acting_first_is_said_in_a_sentence(desk: TestClient) -> None:
    code = await file_case(desk)
    await signed_in(desk, "intake")
    csrf = await page_csrf(desk)
    first = await desk.post(
        f"/desk/cases/{code}/act",
        data={"csrf": csrf, "seen": "submitted", "step": "accepted"},
        allow_redirects=False,
    )
    assert first.status == 303
    late = await desk.post(
        f"/desk/cases/{code}/act",
        data={
            "csrf": csrf,
            "seen": "submitted",
            "step": "redirected",
            "reason": "x",
            "department": "法院",
        },
        allow_redirects=False,
    )
    page = await late.text()
    assert late.status == 409
    assert "刚刚有了变化：前台小刘受理" in page and "现在的状态是“已受理”" in page
    assert (await case_row(desk, code)).status == "accepted"


async def test_an_illegal_step_is_refused_in_words(desk: TestClient) -> None:
    code = await file_case(desk, steps=ASSIGN_ROADS)
    await signed_in(desk, "roads")
    assert (await act(desk, code, "extended", reason="会商", days=10)).status == 303
    again = await act(desk, code, "extended", reason="再会商", days=10)
    assert again.status == 409 and "只能延期一次" in await again.text()
    closing = await act(desk, code, "closed")
    assert closing.status == 409 and "不能“办结”" in await closing.text()


# -- list, search, paging ------------------------------------------------------------------------


async def test_search_by_mobile_goes_through_the_keyed_hash(desk: TestClient) -> None:
    mine = await file_case(desk, phone="+8613912345678")
    other = await file_case(desk, phone="+8613800000000")
    await signed_in(desk, "intake")
    for query in ("13912345678", "+86 139 1234 5678"):
        page = await (await desk.get("/desk/cases", params={"q": query})).text()
        assert mine in page and other not in page, query
    page = await (await desk.get("/desk/cases", params={"q": mine[-6:].lower()})).text()
    assert mine in page and other not in page
    bad = await desk.get("/desk/cases", params={"q": "路灯"})
    assert bad.status == 422 and "请输入事项编号" in await bad.text()


async def test_filters_and_keyset_pages(desk: TestClient) -> None:
    codes = [await file_case(desk, category="housing" if n % 2 else "city") for n in range(55)]
    await file_case(desk, steps=ASSIGN_ROADS)
    await signed_in(desk, "intake")
    first = await (await desk.get("/desk/cases", params={"status": "submitted"})).text()
    assert codes[-1] in first and codes[4] not in first
    following = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await (await desk.get(following)).text()
    assert codes[4] in second and codes[-1] not in second and 'rel="next"' not in second
    housing = await (await desk.get("/desk/cases", params={"category": "housing"})).text()
    assert codes[1] in housing and codes[0] not in housing
    assigned = await (await desk.get("/desk/cases", params={"department": "城管局"})).text()
    assert all(code not in assigned for code in codes)


async def test_overdue_filter(desk: TestClient) -> None:
    late = await file_case(desk)
    fresh = await file_case(desk)
    async with uow_of(desk) as uow:
        case = await uow.cases.by_code(late, for_update=True)
        assert case is not None and case.accept_due_at is not None
        case.accept_due_at = case.created_at.replace(year=case.created_at.year - 1)
        await uow.commit()
    await signed_in(desk, "intake")
    page = await (await desk.get("/desk/cases", params={"overdue": "1"})).text()
    assert late in page and fresh not in page
    assert "已超期" in page


async def test_a_tampered_timeline_is_shown_as_broken(desk: TestClient) -> None:
    code = await file_case(desk, steps=ASSIGN_ROADS)
    async with uow_of(desk) as uow:
        if uow.db.is_postgres:
            await uow.session.execute(text("ALTER TABLE case_events DISABLE TRIGGER ALL"))
        else:
            await uow.session.execute(text("DROP TRIGGER IF EXISTS case_events_no_update"))
        event = await uow.session.scalar(select(CaseEvent).where(CaseEvent.type == "assigned"))
        assert event is not None
        event.data = {**event.data, "department": "别的单位"}
        await uow.commit()
    await signed_in(desk, "intake")
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    assert "校验不通过" in page
