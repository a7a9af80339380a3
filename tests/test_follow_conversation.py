"""Following a case from anywhere (issue 17), as citizens say it: proof across channels,
anonymous filing, 补充 and 催办, and a history that reads. A real Engine on the in-memory
store, which the store contract holds to the real ones."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from conversation.catalog import ZH
from storage.models import utcnow

from .conftest import Citizen
from .memory_conversation import OnMemory

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")


@pytest.fixture
def memory() -> OnMemory:
    return OnMemory()


async def filed(citizen: Citizen) -> str:
    match = CODE.search(await citizen.file_a_matter())
    assert match is not None
    return match.group()


async def test_a_relative_on_another_channel_proves_by_the_texted_code(memory: OnMemory) -> None:
    code = await filed(memory.citizen("openid-1", channel="wechat"))
    relative = memory.citizen("tg-42", channel="telegram")
    asked = await relative.say(code)
    assert "确认身份" in asked and "1 发验证码到登记的手机" in asked
    assert "张三" not in asked and "8000" not in asked  # nothing shown before asking to text
    sent = await relative.say("1")
    assert "尾号 8000" in sent and "10分钟" in sent and "13800138000" not in sent
    texted = await memory.backend.texted_code()
    wrong = "000000" if texted != "000000" else "111111"
    assert "还可以再试4次" in await relative.say(wrong)
    page = await relative.say(" ".join(texted))  # spaces forgiven
    assert ZH["proof.passed"] in page and code in page and "办理经过" in page
    # Not asked again, from this chat.
    assert "确认身份" not in await relative.say(code)
    assert code in await relative.say("进度查询")


async def test_an_anonymous_filing_gives_a_query_code_that_opens_it_anywhere(
    memory: OnMemory,
) -> None:
    citizen = memory.citizen("web-anon")
    for answer in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "XX区幸福路12号", "跳过"):
        await citizen.say(answer)
    meaning = await citizen.say("匿名")
    assert ZH["anonymous.meaning"] in meaning and "请核对要提交的内容" in meaning
    assert "姓名：匿名" in meaning and "手机：匿名" in meaning
    receipt = await citizen.say("1")
    code, query = CODE.search(receipt), QUERY.search(receipt)
    assert code is not None and query is not None
    assert "只显示这一次" in receipt
    case = memory.only_case()
    assert case.anonymous and case.name == "" and case.phone == ""
    assert query.group(1) not in str(case)  # kept only as a keyed hash
    stranger = memory.citizen("+8613900000000", channel="sms")
    asked = await stranger.say(code.group())
    assert "确认身份" in asked
    assert "没有可以接收验证码的手机" in await stranger.say("1")
    assert "查询码不对" in await stranger.say("ABCD-EFGH")
    page = await stranger.say(query.group(1).lower())
    assert ZH["proof.passed"] in page and code.group() in page


async def test_anonymous_then_a_name_after_all_asks_for_the_mobile(memory: OnMemory) -> None:
    citizen = memory.citizen("web-2")
    for answer in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "XX区幸福路12号", "跳过"):
        await citizen.say(answer)
    await citizen.say("匿名")
    await citizen.say("2")  # change a field
    assert "姓名" in await citizen.say("5")
    assert "手机" in await citizen.say("李四")
    summary = await citizen.say("13800138000")
    assert "姓名：李四" in summary and "匿名" not in summary
    assert "查询码" not in await citizen.say("1")
    assert not memory.only_case().anonymous


async def test_too_many_texts_say_when_to_try_again(memory: OnMemory) -> None:
    code = await filed(memory.citizen("openid-1", channel="wechat"))
    stranger = memory.citizen("tg-1", channel="telegram")
    await stranger.say(code)
    for _ in range(3):
        assert "尾号 8000" in await stranger.say("1")
    limited = await stranger.say("1")
    assert "尝试次数太多了" in limited and "以后再试" in limited


async def test_the_case_page_offers_what_can_be_done_and_each_works(memory: OnMemory) -> None:
    citizen = memory.citizen()
    code = await filed(citizen)
    page = await citizen.say(code)
    assert "您现在可以回复数字" in page and "1 补充材料" in page and "2 催办" in page
    assert "3 " not in page.split("您现在可以回复数字")[1]  # no rating before it closes
    assert "请发送要补充到事项" in await citizen.say("1")
    assert "已补充到事项" in await citizen.say("灯杆旁边的电线也露出来了，很危险。")
    assert "已收到" not in await citizen.photo("m-9")  # a photo is added, not a form photo
    done = await citizen.say("完成")
    assert ZH["follow.supplement.done"] in done and "您补充了材料" in done
    urged = await citizen.say("2")
    assert "已为您催办事项" in urged and "第1次" in urged
    assert "刚催办过" in await citizen.say("催办")
    types = [e.type for e in memory.only_case().timeline]
    assert types == ["submitted", "supplemented", "supplemented", "urged"]
    assert memory.sent_types()[-3:] == ["case.updated", "case.updated", "case.updated"]
    assert memory.only_case().attachments[-1].ref == "m-9"
    # As words from the menu, too: one case fits, so it is that one.
    await citizen.say("菜单")
    memory.backend.skew += timedelta(hours=73)  # past the office's 72 hours
    assert "第2次" in await citizen.say("催办")


async def test_a_word_added_to_an_answered_case_asks_for_a_review(memory: OnMemory) -> None:
    citizen = memory.citizen()
    code = await filed(citizen)
    records = memory.store.cases.records
    records[code] = replace(
        records[code], status="closed", review_due_at=utcnow() + timedelta(days=20)
    )
    page = await citizen.say(code)
    assert "1 补充材料" in page and "2 评价" in page and "3 申请复查" in page
    assert "可申请复查至" in page
    assert "会同时为您申请复查" in await citizen.say("补充")
    added = await citizen.say("答复说修好了，可是路灯还是不亮。")
    assert "并为您申请了复查" in added
    assert records[code].status == "review_requested"
    assert [e.type for e in records[code].timeline][-2:] == ["review_requested", "supplemented"]
    assert "已补充到事项" in await citizen.say("晚上八点以后整条路都是黑的。")


async def test_nothing_to_urge_is_said_plainly(memory: OnMemory) -> None:
    citizen = memory.citizen()
    assert ZH["follow.none.urge"] in await citizen.say("催办")
    code = await filed(citizen)
    records = memory.store.cases.records
    records[code] = replace(records[code], status="rated")
    assert ZH["follow.not_now.urge"] in await citizen.say(f"催办 {code}")
