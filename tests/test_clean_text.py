"""Citizens' text is normalised at the edge (issue 13, low): control, bidi-override and
zero-width characters are dropped (NUL no longer breaks PostgreSQL), and text that is not valid
Unicode is refused with a sentence instead of a 503 and a traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from conversation.messages import InvalidText, clean_text
from storage.models import Case
from tests.web_citizen import AUTH, WebCitizen

JSON = {"Content-Type": "application/json"}


def test_clean_text_keeps_words_and_drops_what_hides_them() -> None:
    assert (
        clean_text("路灯\x00坏了\u202e\u200b一个月\ufeff\r\n第二行\t。")
        == "路灯坏了一个月\n第二行\t。"
    )
    assert clean_text("家人👨\u200d👩\u200d👧") == "家人👨\u200d👩\u200d👧"  # the joiner stays
    assert clean_text("\x1b[31mred\x7f\x85") == "[31mred"
    with pytest.raises(InvalidText, match="invalid Unicode"):
        clean_text("bad \ud800 text")


async def test_nul_and_overrides_in_a_filing_are_dropped(
    aiohttp_client: Any, database_settings: Settings
) -> None:
    client = await aiohttp_client(create_app(database_settings, workers=False))
    citizen = WebCitizen(client)
    for text in (
        "1",
        "4",
        "小区门口的路灯\x00坏了一个多月，\u202e晚上很黑。\u200b",
        "幸福路\x0012号",
    ):
        await citizen.say(text)
    for text in ("跳过", "张\x00三", "13800138000"):
        await citizen.say(text)
    receipt = await citizen.say("1")
    assert "编号" in receipt
    async with client.app[MINYI].db.session() as session:
        case = (await session.scalars(select(Case))).one()
    assert case.description == "小区门口的路灯坏了一个多月，晚上很黑。"
    assert case.location_text == "幸福路12号"


async def test_a_lone_surrogate_is_refused_with_a_sentence(
    aiohttp_client: Any, sqlite_only: Settings
) -> None:
    client = await aiohttp_client(create_app(sqlite_only, workers=False))
    response = await client.post(
        "/webchat/messages", data=b'{"text": "hi \\ud800 there"}', headers=JSON
    )
    assert response.status == 422
    assert "invalid Unicode" in (await response.json())["message"]
    # The events API likewise (422 naming the problem, not a 500).
    citizen = WebCitizen(client)
    code = await citizen.file_a_matter()
    response = await client.post(
        f"/api/v1/cases/{code}/events",
        data=b'{"type": "note", "note": "\\udfff"}',
        headers={**AUTH, **JSON},
    )
    assert response.status == 422 and "invalid Unicode" in (await response.json())["message"]
    response = await client.post(
        f"/api/v1/cases/{code}/events",
        data=json.dumps({"type": "note", "note": "已电话\x00联系"}).encode(),
        headers={**AUTH, **JSON},
    )
    assert response.status == 200, await response.text()
    assert "已电话联系" in await response.text()


async def test_any_channel_gets_a_sentence_for_invalid_unicode(runtime: Any) -> None:
    from tests.conftest import Citizen

    reply = await Citizen(runtime, channel="telegram", sender="4242").say("\ud83d 坏了")
    assert "无法识别" in reply
