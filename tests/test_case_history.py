"""A case's history in the chat: every step a dated sentence, the whole of it, paged when long."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from conversation.cases.progress import Progress
from storage.lifecycle import record_progress
from storage.models import utcnow
from storage.uow import UnitOfWork

from .conftest import Citizen

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
DATED = re.compile(r"(\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2}) (.*)")
# 10:00 in Beijing on 1 December, and one step a day after it.
FIRST_DAY = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
STEPS = (
    Progress("accepted"),
    Progress("assigned", department="区住建局"),
    Progress("returned", reason="不属于本单位职责"),
    Progress("assigned", department="区城管局"),
    Progress("extended", reason="需要现场勘验", days=30),
    Progress("replied", note="已督促饭店安装油烟净化器。"),
    Progress("closed"),
)


async def walk(citizen: Citizen, code: str) -> None:
    for day, step in enumerate(STEPS):
        async with UnitOfWork(citizen.runtime.db, citizen.runtime.cipher) as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            at = FIRST_DAY + timedelta(days=day)
            await record_progress(uow, case, step, citizen.runtime.deadlines, at)
            await uow.commit()


def history(reply: str) -> list[str]:
    """The dated lines of a reply, each checked to say something after its date."""
    lines = [m for line in reply.splitlines() if (m := DATED.fullmatch(line))]
    assert all(m.group(2).strip() for m in lines), reply
    return [m.group(0) for m in lines]


async def test_each_step_reads_as_a_dated_sentence_and_a_long_history_pages_back(
    citizen: Citizen,
) -> None:
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    await walk(citizen, code)
    await citizen.say("评价")
    await citizen.say("1")  # 满意
    await citizen.say("跳过")
    today = utcnow().astimezone(citizen.runtime.settings.tz())
    latest = await citizen.say(code)
    assert history(latest) == [
        "12月1日 已受理",
        "12月2日 交办区住建局办理",
        "12月3日 退回，重新交办",
        "12月4日 交办区城管局办理",
        "12月5日 延期30天：需要现场勘验",
        "12月6日 答复：已督促饭店安装油烟净化器。",
        "12月7日 办结",
        f"{today.month}月{today.day}日 已评价：满意",
    ]
    assert "回复“更多”查看更早的记录" in latest
    earlier = await citizen.say("更多")
    assert history(earlier) == [f"{today.month}月{today.day}日 已登记"]
    assert "更多" not in earlier.replace("更早的记录", "")
    assert "没有更早的记录" in await citizen.say("更多")
    assert "1 我要反映" in await citizen.say("谢谢")  # and the menu is one word away


async def test_the_history_speaks_the_citizens_language(citizen: Citizen) -> None:
    citizen.language = "en"
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    await walk(citizen, code)
    detail = await citizen.say(code)
    assert "2026-12-02 assigned to 区住建局" in detail
    assert "2026-12-05 deadline extended by 30 days: 需要现场勘验" in detail
    assert "2026-12-06 answered: 已督促饭店安装油烟净化器。" in detail
    assert "more" not in detail  # eight steps: all of them at once
    assert len(history(detail)) == 8


async def test_the_page_reads_every_step_the_next_deadline_and_what_can_be_done_now(
    citizen: Citizen,
) -> None:
    """Issue 17.4: who accepted, which department, a leader's 批示, the citizen's own 补充 and
    催办 — each a dated sentence; the next deadline; the actions as numbered choices, which
    still work after paging back with 更多."""
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    runtime = citizen.runtime
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for day, step in enumerate(
            (
                Progress("accepted", department="区信访局"),
                Progress("assigned", department="区住建局"),
            )
        ):
            await record_progress(
                uow, case, step, runtime.deadlines, FIRST_DAY + timedelta(days=day)
            )
        # A leader's instruction as the case work records it (issue 18): its words in `note`.
        await uow.events.append(
            case, "instructed", "staff:boss", {"note": "请住建局三日内回复群众"},
            at=FIRST_DAY + timedelta(days=2),
        )  # fmt: skip
        await uow.commit()
    await citizen.say(code)
    await citizen.say("1")  # 补充
    for n in range(6):
        await citizen.say(f"第{n + 1}次补充：楼下饭店昨晚又吵到两点。")
    await citizen.say("完成")
    assert "第1次" in await citizen.say("催办")
    today = utcnow().astimezone(runtime.settings.tz())
    day = f"{today.month}月{today.day}日"
    page = await citizen.say(code)
    assert history(page) == [
        "12月3日 领导批示：请住建局三日内回复群众",
        *[f"{day} 您补充了材料"] * 6,
        f"{day} 您催办了一次",
    ]
    assert "回复“更多”查看更早的记录" in page
    assert "\n办结：" in page  # the next deadline: 60 days from acceptance
    assert "您现在可以回复数字" in page and "1 补充材料" in page and "2 催办" in page
    earlier = await citizen.say("更多")
    assert history(earlier) == [
        f"{day} 已登记",
        "12月1日 区信访局已受理",
        "12月2日 交办区住建局办理",
    ]
    assert "2 催办" in earlier
    assert "刚催办过" in await citizen.say("2")  # the numbers still pick the page's actions
