"""The flow table: the bundled menu as CONTRACTS.md has it, and a third form from the office file
alone — on the menu, filed through the conversation, set aside and resumed, opened by an event."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.flows.registry import flows_for
from conversation.messages import Inbound
from conversation.office import OfficeConfigError, load_office
from storage.models import Case

from .conftest import Citizen, joined

BUNDLED = (Path(__file__).parent.parent / "conversation" / "office.toml").read_text("utf-8")
# 表扬: a citizen thanks an official or a department. Declared here and nowhere in the code.
PRAISE = """
[forms.praise]
kind = "suggestion"
confirmation = { zh = "谢谢您的表扬！编号 {code}。我们会转达给被表扬的单位和个人。", en = "Thank you! Code {code}." }
menu = { key = "6", label = { zh = "表扬", en = "Praise" }, synonyms = ["点赞"] }
steps = [
  { field = "description", type = "description", min = 5, prompt = "请写下您想表扬的单位或个人，以及他们做了什么（5字以上）。" },
  { field = "whom", type = "text", label = "被表扬的单位" },
  { field = "name", type = "name", optional = true },
]
"""
# 7 领导信箱 is there because the bundled office file declares leaders' mailboxes.
MENU = "1 我要反映\n2 进度查询\n3 评价\n4 意见建议\n5 常见问题\n7 领导信箱\n0 人工服务"


@pytest.fixture
async def praise_runtime(tmp_path: Path, sqlite_only: Settings) -> AsyncIterator[Minyi]:
    office = tmp_path / "office.toml"
    office.write_text(BUNDLED + PRAISE, "utf-8")
    async with open_minyi(sqlite_only.replace(office_config=str(office))) as runtime:
        yield runtime


async def test_the_bundled_menu_is_the_one_citizens_know(citizen: Citizen) -> None:
    reply = await citizen.say("菜单")
    assert reply.endswith(MENU)
    assert "事项的类别" in await citizen.say("我要反映")  # the words work as well as the numbers
    await citizen.say("取消")
    assert "意见或建议" in await citizen.say("意见建议")


async def test_a_form_declared_only_in_the_office_file_is_filed_through_the_chat(
    praise_runtime: Minyi,
) -> None:
    citizen = Citizen(praise_runtime)
    menu = await citizen.say("菜单")
    assert menu.endswith(MENU.replace("7 领导信箱", "6 表扬\n7 领导信箱"))
    assert "想表扬的单位或个人" in await citizen.say("6")
    assert "被表扬的单位" in await citizen.say("社区网格员小王半夜帮我们修好了水管")
    await citizen.say("人工")  # set aside, not lost, and offered back under its own key
    assert "回复“6”可以接着填" in await citizen.say("菜单")
    assert "要接着填吗" in await citizen.say("点赞")
    assert "被表扬的单位" in await citizen.say("1")
    assert "姓名" in await citizen.say("幸福社区居委会")
    summary = await citizen.say("跳过")
    assert "社区网格员小王" in summary and "幸福社区居委会" in summary
    done = await citizen.say("1")
    code = re.search(r"XF\d{8}-[0-9A-Z]{6}", done)
    assert code and done == f"谢谢您的表扬！编号 {code.group()}。我们会转达给被表扬的单位和个人。"
    async with praise_runtime.db.session() as session:
        case = (await session.scalars(select(Case))).one()
    assert (case.kind, case.category) == ("suggestion", "")
    assert case.answers == {"whom": "幸福社区居委会", "form": "praise"}
    # A button of the channel's own menu names the form by its event (the form's name here).
    click = Inbound(channel="wechat", sender="o1", kind="event", event="menu", event_key="praise")
    assert "想表扬的单位或个人" in joined(await praise_runtime.handle(click))


async def test_a_menu_entry_two_flows_would_share_is_refused(tmp_path: Path) -> None:
    office = tmp_path / "office.toml"
    office.write_text(BUNDLED + PRAISE.replace('key = "6"', 'key = "2"'), "utf-8")
    with pytest.raises(
        OfficeConfigError, match=r"forms\.praise\.menu: the key '2' already picks status"
    ):
        flows_for(load_office(office))
    office.write_text(BUNDLED + PRAISE.replace('"点赞"', '"评价"'), "utf-8")
    with pytest.raises(OfficeConfigError, match=r"the word '评价' already picks rating"):
        flows_for(load_office(office))
    office.write_text(BUNDLED + PRAISE.replace("menu = {", "unused = {"), "utf-8")
    with pytest.raises(OfficeConfigError, match=r"forms\.praise\.menu is missing"):
        flows_for(load_office(office))


async def test_an_unknown_menu_button_shows_the_menu_and_tags_nothing(citizen: Citizen) -> None:
    click = Inbound(channel="wechat", sender="o2", kind="event", event="menu", event_key="lottery")
    assert (await citizen.runtime.handle(click))[0].text.startswith("您好")
    wechat = Citizen(citizen.runtime, sender="o2", channel="wechat")
    await wechat.file_a_matter()
    async with citizen.runtime.db.session() as session:
        case = (await session.scalars(select(Case))).one()
    assert case.source == ""  # a menu key is never taken for a QR code's scene
