"""重复信访 asked in the chat: a matter like the asker's open one is offered as a 补充 of it.

A real Engine on the in-memory store (the store contract holds it to the real stores).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Case, CaseEvent

from .conftest import Citizen
from .memory_conversation import OnMemory
from .web_citizen import WebCitizen

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
AGAIN = "幸福小区东门的路灯还是坏的，一个多月了，晚上很黑，老人走路容易摔倒。"


@pytest.fixture
def memory() -> OnMemory:
    return OnMemory()


@pytest.fixture
def citizen(memory: OnMemory) -> Citizen:
    return memory.citizen()


async def fill_up_to_submit(citizen: Citizen, description: str) -> str:
    """The filing up to, and including, `1 提交`; the reply to it."""
    await citizen.say("1")
    await citizen.say("4")
    await citizen.say(description)
    await citizen.say("XX区幸福路12号幸福小区东门")
    await citizen.say("跳过")
    await citizen.say("张三")
    await citizen.say("13800138000")
    return await citizen.say("1")


async def test_the_same_matter_becomes_a_supplement_of_the_open_case(
    memory: OnMemory, citizen: Citizen
) -> None:
    first = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    asked = await fill_up_to_submit(citizen, AGAIN)
    assert first in asked and "同一件事吗" in asked
    assert "小区门口的路灯坏了一个多月" in asked  # a short quote of the earlier words
    assert "1 是同一件事，补充到原事项" in asked and "2 是新的事项，继续登记" in asked
    assert "请回复“1”或“2”" in await citizen.say("嗯嗯")  # re-asked kindly, nothing filed
    done = await citizen.say("1")
    assert f"已补充到您的事项 {first}" in done and CODE.findall(done) == [first]
    assert len(memory.store.cases.records) == 1
    case = memory.only_case()
    added = [e for e in case.timeline if e.type == "supplemented"]
    assert len(added) == 1 and added[0].data["text"] == AGAIN
    assert "1 我要反映" in await citizen.say("菜单")  # back at the menu


async def test_a_new_matter_is_filed_as_before(memory: OnMemory, citizen: Citizen) -> None:
    first = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    assert first in await fill_up_to_submit(citizen, AGAIN)
    filed = await citizen.say("2")
    second = CODE.search(filed).group()  # type: ignore[union-attr]
    assert second != first and "提交成功" in filed
    assert len(memory.store.cases.records) == 2
    first_case = memory.store.cases.records[first]
    assert not [e for e in first_case.timeline if e.type == "supplemented"]


async def test_a_case_finished_meanwhile_takes_no_supplement_and_the_filing_goes_on(
    memory: OnMemory, citizen: Citizen
) -> None:
    first = CODE.search(await citizen.file_a_matter()).group()  # type: ignore[union-attr]
    assert first in await fill_up_to_submit(citizen, AGAIN)
    await memory.backend.move_case(first, "closed")  # 办结 while the citizen was reading
    gone = await citizen.say("1")
    assert f"事项 {first} 刚好办完" in gone and "请核对要提交的内容" in gone
    filed = await citizen.say("1")  # asked once: `1 提交` now files it
    assert "提交成功" in filed and first not in filed
    assert len(memory.store.cases.records) == 2


async def test_no_question_for_another_matter_or_another_person(
    memory: OnMemory, citizen: Citizen
) -> None:
    await citizen.file_a_matter()
    other = "楼下烧烤店每天晚上油烟很大，窗户都不敢开，希望管一管。"
    filed = await fill_up_to_submit(citizen, other)
    assert "同一件事吗" not in filed and CODE.search(filed) is not None
    # Someone else's lamp is theirs to report: never asked about (nor quoted to) them.
    stranger = memory.citizen("someone-else")
    theirs = await fill_up_to_submit(stranger, AGAIN)
    assert "同一件事吗" not in theirs and CODE.search(theirs) is not None
    assert len(memory.store.cases.records) == 3


# -- over a real channel: the web chat, on SQLite and PostgreSQL ----------------------------------


async def test_the_web_chat_asks_and_adds_the_same_matter_to_the_open_case(
    aiohttp_client: Any, database_settings: Settings
) -> None:
    client = await aiohttp_client(create_app(database_settings, workers=False))
    web = WebCitizen(client)
    first = await web.file_a_matter()
    for text in ("1", "4", AGAIN, "幸福路12号", "跳过", "张三", "13800138000"):
        await web.say(text)
    asked = await web.say("1")
    assert first in asked and "同一件事吗" in asked and "路灯坏了一个多月" in asked
    assert "请回复“1”或“2”" in await web.say("不知道")
    assert f"已补充到您的事项 {first}" in await web.say("1")

    async with client.app[MINYI].db.session() as session:
        cases = (await session.scalars(select(Case))).all()
        assert [c.code for c in cases] == [first]
        events = (
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == cases[0].id).order_by(CaseEvent.seq)
            )
        ).all()
    assert [e.type for e in events] == ["submitted", "supplemented"]
    assert events[1].data["text"] == AGAIN

    # Another chat on the same page is someone else: filed, never asked about the lamp.
    other = WebCitizen(client)
    for text in ("1", "4", AGAIN, "幸福路12号", "跳过", "李四", "13900139000"):
        await other.say(text)
    receipt = await other.say("1")
    assert "同一件事吗" not in receipt and CODE.search(receipt) is not None
