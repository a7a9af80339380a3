"""Status, FAQ, staff, rating, resume and expiry, channel events and language.

A real Engine on the in-memory store, which the store contract holds to the real stores.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from conversation.messages import Inbound
from storage.memory_cases import Entry

from .conftest import Citizen
from .memory_conversation import OnMemory

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


@pytest.fixture
def memory() -> OnMemory:
    return OnMemory()


@pytest.fixture
def citizen(memory: OnMemory) -> Citizen:
    return memory.citizen()


async def test_status_lists_own_cases_with_status_and_deadline(citizen: Citizen) -> None:
    assert "还没有在这里反映过" in await citizen.say("2")
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    listing = await citizen.say("进度查询")
    assert code in listing and "等待受理" in listing and "告知是否受理" in listing
    detail = await citizen.say(code.lower())
    assert code in detail and "办理经过" in detail and "已登记" in detail


async def test_a_code_typed_by_someone_else_reads_exactly_like_an_unknown_code(
    memory: OnMemory, citizen: Citizen
) -> None:
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    stranger = memory.citizen("someone-else")
    unknown = code[:-6] + ("ZZZZZZ" if not code.endswith("ZZZZZZ") else "YYYYYY")
    theirs = await stranger.say(code)
    missing = await stranger.say(unknown)
    assert theirs.replace(code, "<code>") == missing.replace(unknown, "<code>")
    assert "张三" not in theirs and "路灯" not in theirs
    assert "确认身份" in theirs  # a proof is asked for, for both alike
    # Also through the status menu, and from another channel with the same sender id.
    other_channel = memory.citizen(citizen.sender, channel="telegram")
    assert "确认身份" in await other_channel.say(code)


async def test_faq_by_number_and_by_keywords(citizen: Citizen) -> None:
    listing = await citizen.say("5")
    assert "1 反映的事项多久会有答复" in listing
    assert "60日" in await citizen.say("1")
    assert "加密保存" in await citizen.say("我的信息会不会泄露给别人")
    assert "没有找到相关的问题" in await citizen.say("今天天气怎么样")
    assert "1 我要反映" in await citizen.say("菜单")


async def test_staff_request_is_recorded_and_the_citizen_told_when_people_work(
    memory: OnMemory, citizen: Citizen
) -> None:
    monday_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    memory.engine.clock = lambda: monday_10
    assert "尽快在这里回复" in await citizen.say("0")
    sunday = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    memory.engine.clock = lambda: sunday
    assert "不是工作时间" in await citizen.say("人工")
    assert memory.sent_types() == ["handoff.requested", "handoff.requested"]


async def test_staff_mid_form_keeps_the_draft(citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("2")
    await citizen.say("人工")
    menu = await citizen.say("菜单")
    assert "没填完" in menu
    assert "要接着填吗" in await citizen.say("1")
    assert "事情经过" in await citizen.say("1")  # continue: back at the description step


async def test_risk_words_give_emergency_numbers_and_page_staff_without_losing_the_answer(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.say("1")
    await citizen.say("2")
    reply = await citizen.say("老板拖欠工资半年，再不给我就跳楼")
    assert "110" in reply and "120" in reply and "地址" in reply  # the form went on
    [entry] = memory.store.cases.published
    assert entry.type == "handoff.requested"
    assert entry.data["reason"] == "risk" and entry.data["risk_words"] == ["跳楼"]
    await citizen.say("跳楼")  # alerted once per conversation
    assert memory.sent_types() == ["handoff.requested"]


async def test_idle_form_asks_to_continue_then_restart_and_drop(
    memory: OnMemory, citizen: Citizen
) -> None:
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = {"now": start}
    memory.engine.clock = lambda: clock["now"]
    await citizen.say("1")
    await citizen.say("1")
    clock["now"] = start + timedelta(hours=2)
    ask = await citizen.say("物业乱收费")
    assert "要接着填吗" in ask and "填到了“情况”" in ask
    assert "事情经过" in await citizen.say("1")
    assert "地址" in await citizen.say("物业每个月多收五十元电梯费，没有任何说明")
    clock["now"] += timedelta(hours=3)
    await citizen.say("随便")
    assert "类别" in await citizen.say("2")  # start again
    clock["now"] += timedelta(hours=1)
    await citizen.say("x")
    assert "1 我要反映" in await citizen.say("3")  # drop it
    assert "没填完" not in await citizen.say("菜单")


async def test_after_the_session_lifetime_a_form_starts_fresh(
    memory: OnMemory, citizen: Citizen
) -> None:
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    clock = {"now": start}
    memory.engine.clock = lambda: clock["now"]
    await citizen.say("1")
    await citizen.say("1")
    clock["now"] = start + timedelta(hours=25)
    reply = await citizen.say("你好")
    assert "您好" in reply and "没填完" not in reply and "接着填" not in reply


async def test_rating_a_closed_case_and_an_unhappy_reason(
    memory: OnMemory, citizen: Citizen
) -> None:
    assert "没有需要评价" in await citizen.say("3")
    code = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    await memory.backend.move_case(code, "closed")
    ask = await citizen.say("评价")
    assert code in ask and "1 满意" in ask and "3 不满意" in ask
    assert "哪里不满意" in await citizen.say("３")  # full-width digit
    assert "评价已记录" in await citizen.say("一直没人来修，敷衍了事")
    case = memory.store.cases.records[code]
    assert (case.status, case.rating_score, case.rating_label) == ("rated", 3, "不满意")
    assert case.rating_comment == "一直没人来修，敷衍了事" and case.rating_channel == "webchat"
    assert [e.type for e in case.timeline] == ["submitted", "rated", "rating.commented"]
    assert memory.sent_types() == ["case.submitted", "case.rated", "case.updated"]
    assert "没有需要评价" in await citizen.say("3")  # rated once


async def test_wechat_style_events(memory: OnMemory, citizen: Citizen) -> None:
    sub = Inbound(
        channel="wechat", sender="openid-1", kind="event", event="subscribe", event_key="town-7"
    )
    greeting = await memory.engine.handle(sub)
    assert "您好" in greeting[0].text
    wechat = memory.citizen("openid-1", channel="wechat")
    await wechat.file_a_matter()
    case = memory.only_case()
    assert case.source == "town-7"  # the QR code's scene tags the case
    click = Inbound(
        channel="wechat", sender="openid-1", kind="event", event="menu", event_key="status"
    )
    assert case.code in (await memory.engine.handle(click))[0].text
    view = Inbound(
        channel="wechat", sender="openid-1", kind="event", event="view", event_key="https://x"
    )
    assert await memory.engine.handle(view) == []
    bye = Inbound(channel="wechat", sender="openid-1", kind="event", event="unsubscribe")
    assert await memory.engine.handle(bye) == []
    assert list(memory.store.cases.unsubscribed) == [("wechat", "openid-1")]


async def test_english_speakers_get_english(citizen: Citizen) -> None:
    citizen.language = "en-US"
    reply = await citizen.say("hello")
    assert "Reply with a number" in reply and "1 Report a matter" in reply
    assert "kind of matter" in await citizen.say("1")


async def test_a_redelivered_message_gets_the_same_replies_and_no_new_step(
    citizen: Citizen,
) -> None:
    await citizen.say("1")
    first = await citizen.say("2", message_id="msg-42")
    again = await citizen.say("2", message_id="msg-42")
    assert first == again and "事情经过" in again
    assert "至少写10个字" in await citizen.say("短")  # still at the description step


async def test_a_message_redelivered_after_its_replies_went_is_told_and_takes_no_step(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.say("1")
    await citizen.say("2", message_id="msg-43")
    memory.backend.skew += memory.store.redelivery + timedelta(seconds=1)
    late = await citizen.say("2", message_id="msg-43")
    assert "已经收到并办理过了" in late and "菜单" in late
    assert "至少写10个字" in await citizen.say("短")  # still at the description step
    # An event re-delivered that late (a subscribe) gets nothing rather than that sentence.
    follow = Inbound(
        channel="webchat", sender="e1", kind="event", event="subscribe", message_id="s"
    )
    assert await memory.engine.handle(follow)
    memory.backend.skew += memory.store.redelivery + timedelta(seconds=1)
    assert await memory.engine.handle(follow) == []
    memory.backend.skew += memory.store.dedupe_ttl  # past the day: a new message again
    assert "已经收到" not in await citizen.say("2", message_id="msg-43")


async def test_an_unsupported_message_says_what_to_send_and_keeps_the_step(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.say("1")
    await citizen.say("2")  # now at the description step
    sticker = Inbound(channel="webchat", sender=citizen.sender, kind="event", event="unsupported")
    replies = await memory.engine.handle(sticker)
    assert [r.text for r in replies] == [memory.engine.office.catalog.text("zh", "unsupported")]
    assert "至少写10个字" in await citizen.say("短")  # still at the description step


def handoff_entries(memory: OnMemory) -> list[Entry]:
    """What the back office was sent of handoffs, in order."""
    return [e for e in memory.store.cases.published if e.type == "handoff.requested"]


async def test_staff_asked_for_with_0_are_told_the_matter_and_the_case(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.say("你好")
    await citizen.say("低保怎么申请？")  # too short to file: the menu asks again, the words stay
    await citizen.say("0")
    [first] = handoff_entries(memory)
    assert first.data["summary"] == "低保怎么申请？" and first.case == ""
    one = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    other = CODE.search(  # type: ignore[union-attr]
        await citizen.file_a_matter("单位拖欠了我三个月的工资，老板一直推脱不给。")
    ).group()
    await citizen.say(one)  # looking at the first case, not the latest
    await citizen.say("0")
    await citizen.say(one)
    await citizen.say("人工")
    for entry in handoff_entries(memory)[1:]:
        assert entry.case == one != other
        assert entry.data["summary"] == "单位拖欠了我三个月的工资，老板一直推脱不给。"
    assert all(e.data["summary"] not in ("0", "人工") for e in handoff_entries(memory))


async def test_greetings_and_thanks_get_a_warm_word_and_the_menu(citizen: Citizen) -> None:
    await citizen.say("菜单")  # first contact is over: this is no longer the welcome
    for hello in ("你好", "您好！", "在吗？", "在不在", "hello", "Hi", "早上好", "你好，在吗"):
        reply = await citizen.say(hello)
        assert "没看明白" not in reply and "您好" in reply and "0 人工服务" in reply, hello
    for thanks in ("谢谢", "多谢！", "感谢", "thanks", "好的，谢谢您"):
        reply = await citizen.say(thanks)
        assert reply.startswith("不客气") and "0 人工服务" in reply, thanks
    await citizen.say("2")  # also from a flow that would otherwise ask for a case code
    assert (await citizen.say("谢谢")).startswith("不客气")
    matter = await citizen.say("你好，我家楼下饭店天天半夜吵，吵得睡不着")
    assert "您说的情况已经记下了" in matter and "环境保护" in matter  # still taken as the matter
    assert "没看明白" in await citizen.say("菜单") + await citizen.say("嗯嗯那个")


async def test_a_photo_in_a_form_without_a_photo_step_says_what_to_send(citizen: Citizen) -> None:
    await citizen.say("4")
    reply = await citizen.photo()
    assert "不用发照片" in reply and "意见或建议" in reply  # no "photo step" that is not there


async def test_cancelling_at_the_summary_shows_the_menu(citizen: Citizen) -> None:
    await citizen.say("4")
    await citizen.say("建议在幸福路口增设一个红绿灯，方便老人过马路")
    await citizen.say("跳过")
    await citizen.say("跳过")
    reply = await citizen.say("3")
    assert reply.startswith("已取消") and reply.endswith("0 人工服务")
