"""Filing a matter through the engine: happy path, validation, cancel, back, a lost state write.

A real Engine on the in-memory store, which the store contract holds to the real stores; what a
filing leaves in the database is tested in test_storage.py.
"""

from __future__ import annotations

import re

import pytest

import storage.memory_cases
from conversation.codes import CASE_CODE_RE
from conversation.messages import Inbound, Media

from .conftest import Citizen, joined
from .memory_conversation import OnMemory

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


@pytest.fixture
def memory() -> OnMemory:
    return OnMemory()


@pytest.fixture
def citizen(memory: OnMemory) -> Citizen:
    return memory.citizen()


async def test_first_contact_greets_with_the_menu(citizen: Citizen) -> None:
    reply = await citizen.say("你好")
    assert "您好" in reply
    for line in ("1 我要反映", "2 进度查询", "3 评价", "4 意见建议", "5 常见问题", "0 人工服务"):
        assert line in reply


async def test_complete_filing_gives_a_case_code_and_the_15_day_rule(
    memory: OnMemory, citizen: Citizen
) -> None:
    assert "类别" in await citizen.say("1")
    assert "事情经过" in await citizen.say("4")
    assert "地址" in await citizen.say("小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。")
    assert "照片" in await citizen.say("XX区幸福路12号幸福小区东门")
    assert "第1张" in await citizen.photo("m1")
    assert "第2张" in await citizen.photo("m2")
    assert "姓名" in await citizen.say("完成")
    assert "手机" in await citizen.say("张三")
    summary = await citizen.say("138 0013 8000")
    assert "城市管理与交通" in summary and "张三" in summary and "+8613800138000" in summary
    assert "2张" in summary and "1 提交" in summary
    done = await citizen.say("1")
    code = CODE.search(done)
    assert code and CASE_CODE_RE.fullmatch(code.group())
    assert "15日内" in done

    case = memory.only_case()
    assert case.code == code.group()
    assert (case.kind, case.category, case.status, case.channel) == (
        "petition",
        "city",
        "submitted",
        "webchat",
    )
    assert case.location_text == "XX区幸福路12号幸福小区东门"
    assert (case.name, case.phone) == ("张三", "+8613800138000")
    assert [m.ref for m in case.attachments] == ["m1", "m2"]
    assert case.accept_due_at is not None and case.accept_due_at > case.created_at
    assert [e.type for e in case.timeline] == ["submitted"]
    assert memory.sent_types() == ["case.submitted"]


async def test_each_bad_answer_says_why_and_asks_again(citizen: Citizen) -> None:
    await citizen.say("1")
    assert "1～10" in await citizen.say("99")
    await citizen.say("1")
    short = await citizen.say("太吵了")
    assert "至少写10个字" in short and "事情经过" in short
    assert "2000字" in await citizen.say("吵" * 2001)
    await citizen.say("楼下饭店每天凌晨两点还在营业，噪音很大")
    assert "具体地址" in await citizen.say("x")
    await citizen.say("幸福路1号")
    assert "完成" in await citizen.say("不知道")  # at the photo step: says how to finish
    await citizen.say("跳过")
    assert "不能只有数字" in await citizen.say("12345")
    assert "30个字以内" in await citizen.say("张" * 31)
    await citizen.say("李四")
    assert "号码不对" in await citizen.say("12345")
    assert "号码不对" in await citizen.say("01012345678")  # a Beijing landline: we need a mobile
    assert "号码不对" in await citizen.say("1380013800")
    summary = await citizen.say("+85291234567")
    assert "+85291234567" in summary


async def test_location_pin_is_accepted_with_coordinates(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.say("1")
    await citizen.say("3")
    await citizen.say("河边工厂晚上偷偷排放污水，河水发黑发臭")
    assert "照片" in await citizen.location(31.2304, 121.4737, "上海市黄浦区人民广场")
    await citizen.say("跳过")
    await citizen.say("王五")
    await citizen.say("13900139000")
    await citizen.say("提交")
    case = memory.only_case()
    assert (case.lat, case.lng, case.location_text) == (31.2304, 121.4737, "上海市黄浦区人民广场")


async def test_cancel_submits_nothing(memory: OnMemory, citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("1")
    reply = await citizen.say("取消")
    assert "已取消" in reply and "1 我要反映" in reply
    assert memory.store.cases.records == {}
    assert "类别" in await citizen.say("1")  # a fresh form, no draft offered


async def test_back_one_step(citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("1")
    assert "地址" in await citizen.say("物业不给修漏水的屋顶，已经三个月了")
    assert "事情经过" in await citizen.say("返回")
    assert "类别" in await citizen.say("返回")
    assert "菜单" not in await citizen.say("2")  # re-answer the category, the description is kept
    case_summary_path = await citizen.say("幸福小区")
    assert "照片" in case_summary_path


async def test_change_one_field_from_the_summary(citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("1")
    await citizen.say("物业不给修漏水的屋顶，已经三个月了")
    await citizen.say("幸福小区3号楼")
    await citizen.say("跳过")
    await citizen.say("赵六")
    await citizen.say("13700137000")
    which = await citizen.say("2")
    assert "修改哪一项" in which and "5 姓名" in which
    assert "姓名" in await citizen.say("5")
    summary = await citizen.say("赵小六")
    assert "赵小六" in summary and "1 提交" in summary  # straight back to the summary
    assert CODE.search(await citizen.say("1"))


async def test_free_text_at_the_menu_starts_filing_with_a_suggested_category(
    memory: OnMemory, citizen: Citizen
) -> None:
    reply = await citizen.say("公司拖欠了我三个月的工资，老板一直不给")
    assert "已经记下" in reply and "劳动与社保" in reply
    assert "1 劳动与社保" in reply  # the suggestion is offered first
    assert "地址" in await citizen.say("1")  # the description step is skipped: we have it
    await citizen.say("XX工业园3号厂房")
    await citizen.say("跳过")
    await citizen.say("孙七")
    await citizen.say("13600136000")
    await citizen.say("1")
    case = memory.only_case()
    assert (
        case.category == "labour" and case.description == "公司拖欠了我三个月的工资，老板一直不给"
    )


async def test_a_legal_matter_is_told_about_separation_of_litigation(citizen: Citizen) -> None:
    await citizen.say("1")
    assert "诉访分离" in await citizen.say("9")


async def test_suggestion_is_a_shorter_form(memory: OnMemory, citizen: Citizen) -> None:
    assert "意见或建议" in await citizen.say("4")
    assert "跳过" in await citizen.say("建议在地铁站附近多设几个共享单车停放点")
    await citizen.say("跳过")
    summary = await citizen.say("跳过")
    assert "未填写" in summary
    done = await citizen.say("1")
    assert "谢谢您的意见建议" in done and CODE.search(done)
    case = memory.only_case()
    assert case.kind == "suggestion" and (case.name, case.phone) == ("", "")


async def test_replaying_a_submit_after_lost_state_files_one_case(
    memory: OnMemory, citizen: Citizen
) -> None:
    """If the state write is lost after the case committed, the replayed submit finds the case."""
    await citizen.say("1")
    await citizen.say("1")
    await citizen.say("物业不给修漏水的屋顶，已经三个月了")
    await citizen.say("幸福小区3号楼")
    await citizen.say("跳过")
    await citizen.say("赵六")
    await citizen.say("13700137000")
    store, key = memory.store, "webchat:citizen-1"
    async with store.turn() as turn:
        at_summary = await turn.load_state(key)
    first = CODE.search(await citizen.say("1"))
    async with store.turn() as turn:
        await turn.load_state(key)
        assert at_summary is not None
        await turn.save_state(key, at_summary)  # as if the first state write never happened
        await turn.commit()
    again = CODE.search(await citizen.say("1"))
    assert first and again and first.group() == again.group()
    assert len(memory.store.cases.records) == 1
    assert memory.sent_types() == ["case.submitted"]


async def test_a_video_is_kept_like_a_photo(memory: OnMemory, citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("3")
    video = Inbound(
        channel="webchat",
        sender=citizen.sender,
        kind="video",
        media=(Media("video", "v1"),),
        message_id="video-1",
    )
    assert "第1张" in joined(await citizen.send(video))  # sent early: kept for the photo step
    await citizen.say("河边工厂晚上偷偷排放污水，河水发黑发臭")
    await citizen.say("幸福河东岸")
    assert "第2张" in await citizen.photo("p2")
    await citizen.say("完成")
    await citizen.say("王五")
    await citizen.say("13900139000")
    await citizen.say("1")
    assert sorted(m.kind for m in memory.only_case().attachments) == ["image", "video"]


async def test_a_case_code_collision_runs_the_turn_again_under_a_new_code(
    memory: OnMemory, citizen: Citizen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses a repeated code with Conflict (the store contract checks every store
    does); the engine runs the turn again and the citizen gets the other code, once."""
    first = CODE.search(await citizen.file_a_matter())
    assert first
    codes = iter([first.group(), "XF20261122-ZZZZZZ"])
    monkeypatch.setattr(storage.memory_cases, "new_case_code", lambda day: next(codes))
    second = await memory.citizen("second").file_a_matter()
    assert "XF20261122-ZZZZZZ" in second and first.group() not in second
    assert memory.sent_types() == ["case.submitted", "case.submitted"]
