"""/desk/stats: weeks and departments, 及时受理率, the league table, and the CSV for Excel."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot.desk.measures import statistics
from storage.models import utcnow

from .conftest import file_case, runtime_of, signed_in, uow_of

CLOSE = ({"type": "replied", "note": "已办理"}, {"type": "closed"})


def assigned(department: str) -> tuple[dict[str, Any], ...]:
    return ({"type": "accepted"}, {"type": "assigned", "department": department})


async def change(client: TestClient, code: str, **values: Any) -> None:
    async with uow_of(client) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for name, value in values.items():
            setattr(case, name, value)
        await uow.commit()


async def office_with_three_departments(client: TestClient) -> None:
    for _ in range(2):
        code = await file_case(client, steps=(*assigned("园林局"), *CLOSE))
        await change(client, code, rating_score=1, rating_scale=3, rating_label="满意")
    late = await file_case(client, steps=(*assigned("城管局"), *CLOSE))
    await change(
        client,
        late,
        rating_score=3,
        rating_scale=3,
        rating_label="不满意",
        first_reply_due_at=utcnow() - timedelta(days=1),  # replied after its deadline
    )
    await file_case(client, steps=assigned("水务局"))
    # Never decided and past its 15 days: late on acceptance.
    overdue = await file_case(client)
    await change(client, overdue, accept_due_at=utcnow() - timedelta(hours=1))
    # Filed three weeks ago, in an earlier week.
    old = await file_case(client, steps=assigned("园林局"))
    await change(client, old, created_at=utcnow() - timedelta(days=21))


async def test_measures_by_department_and_week(desk: TestClient) -> None:
    await office_with_three_departments(desk)
    tz = runtime_of(desk).settings.tz()
    today = datetime.now(tz).date()
    async with uow_of(desk) as uow:
        figures = await statistics(
            uow, today - timedelta(days=27), today, tz, runtime_of(desk).office
        )
    rows = {row.key: row for row in figures.departments}
    assert rows["园林局"].counts.cases == 3
    assert rows["园林局"].counts.rate("satisfaction_rate") == 1.0
    assert rows["城管局"].counts.rates() == {
        "satisfaction_rate": 0.0,
        "participation_rate": 1.0,
        "on_time_acceptance_rate": 1.0,
        "on_time_reply_rate": 0.0,
        "first_time_resolution_rate": 0.0,  # rated 不满意
        "repeat_rate": None,  # the repeat watch has not compared it yet
    }
    assert rows[""].counts.rate("on_time_acceptance_rate") == 0.0  # the one never decided
    assert rows[""].rank is None and [rows[k].rank for k in ("园林局", "城管局")] == [1, 2]
    assert [r.key for r in figures.red_flags] == ["园林局", "城管局", "水务局"]
    assert [r.key for r in figures.snails] == []  # three departments: all on the red list
    weeks = {monday: row.counts.cases for monday, row in figures.weeks}
    assert len(weeks) in (4, 5) and sum(weeks.values()) == 6
    this_monday = today - timedelta(days=today.weekday())
    assert weeks[this_monday] == 5
    assert weeks[this_monday - timedelta(days=21)] == 1
    assert all(isinstance(monday, date) and monday.weekday() == 0 for monday in weeks)


async def test_the_snail_list_is_the_bottom_of_the_table(desk: TestClient) -> None:
    for n, department in enumerate(("甲", "乙", "丙", "丁", "戊", "己", "庚")):
        code = await file_case(
            desk, phone=f"+86139000000{n:02d}", steps=(*assigned(department), *CLOSE)
        )
        await change(desk, code, rating_score=1 + n % 3, rating_scale=3, rating_label="x")
    tz = runtime_of(desk).settings.tz()
    today = datetime.now(tz).date()
    async with uow_of(desk) as uow:
        figures = await statistics(uow, today, today, tz, runtime_of(desk).office)
    red = [r.key for r in figures.red_flags]
    snails = [r.key for r in figures.snails]
    assert len(red) == len(snails) == 3 and not set(red) & set(snails)
    assert all(r.counts.rate("satisfaction_rate") == 1.0 for r in figures.red_flags)
    assert all(r.counts.rate("satisfaction_rate") == 0.0 for r in figures.snails[:2])
    assert all(r.rank == 1 for r in figures.red_flags)  # five tied at the top share 1


async def test_the_page_carries_chart_data_and_the_league(desk: TestClient) -> None:
    await office_with_three_departments(desk)
    await signed_in(desk, "boss")
    response = await desk.get("/desk/stats")
    page = await response.text()
    assert response.status == 200
    for words in (
        *("满意率", "参评率", "及时受理率", "按期答复率", "一次性化解率", "重复信访率"),
        *("红旗榜", "蜗牛榜", "园林局"),
    ):
        assert words in page, words
    data = json.loads(page.split('id="chart-data">')[1].split("</script>")[0])
    assert data["departments"] == ["园林局", "城管局", "水务局", "（未交办）"]  # by rank
    assert data["by_department"]["satisfaction"][0] == 100.0
    assert len(data["measures"]) == 6 and data["labels"]["first_time_resolution"] == "一次性化解率"
    assert '<script src="/desk/static/echarts.min.js"' in page and "<script>" not in page
    assert (await desk.get("/desk/static/echarts.min.js")).status == 200


async def test_csv_export_opens_in_excel(desk: TestClient) -> None:
    await office_with_three_departments(desk)
    await signed_in(desk, "roads")
    response = await desk.get("/desk/stats.csv")
    body = await response.read()
    assert response.status == 200 and response.content_type == "text/csv"
    assert body.startswith("\ufeff".encode())
    text = body.decode("utf-8-sig")
    assert text.splitlines()[0] == (
        "统计区间,名次,事项数,满意率(%),满意件,参评件,参评率(%),参评件,办结件,"
        "及时受理率(%),按时受理件,应受理件,按期答复率(%),按期答复件,应答复件,"
        "一次性化解率(%),一次性化解件,办结件,重复信访率(%),重复件,已比对件"
    )
    # rank 1, 3 cases; 满意 2 of 2, rated 2 of 2 closed, accepted on time 3 of 3, …
    assert "园林局,1,3,100.0,2,2,100.0,2,2,100.0,3,3,100.0,2,2,100.0,2,2,,0,0" in text
    assert "attachment" in response.headers["Content-Disposition"]


async def test_a_wrong_period_is_said_plainly(desk: TestClient) -> None:
    await signed_in(desk, "roads")
    for query in (
        {"from": "2026-05-01", "to": "2026-04-01"},
        {"from": "yesterday"},
        {"from": "2020-01-01", "to": "2026-01-01"},
    ):
        response = await desk.get("/desk/stats", params=query)
        assert response.status == 422 and "请选择正确的日期" in await response.text(), query
