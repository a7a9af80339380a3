"""Issue 17 over the real Telegram webhook: a matter told with its place in six messages, one's
own case followed (history, 补充, 催办), an anonymous case proved from another chat with its
查询码, a typed question answered, a thank-you met with the menu."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from channels.telegram.webhook import SECRET_HEADER
from conversation.catalog import ZH
from storage.models import Case

from ...web_citizen import get_case
from .fake_telegram import SECRET, FakeBotApi, TelegramUser

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")
STORY = "解放北路100号楼下的饭店天天半夜吵，吵得孩子睡不着"


async def say(client: TestClient, api: FakeBotApi, user: TelegramUser, text: str) -> str:
    """One text through POST /telegram; what the bot sent back to that chat for it."""
    before = len(api.texts(user.chat_id))
    response = await client.post("/telegram", json=user.text(text), headers={SECRET_HEADER: SECRET})
    assert response.status == 200, await response.text()
    return "\n".join(api.texts(user.chat_id)[before:])


async def press(client: TestClient, api: FakeBotApi, user: TelegramUser, key: str) -> str:
    """A button of the last keyboard sent to the chat, pressed."""
    on_message, buttons = api.keyboard(user.chat_id)
    assert key in [data for _, data in buttons], buttons
    before = len(api.texts(user.chat_id))
    response = await client.post(
        "/telegram", json=user.press(key, on_message), headers={SECRET_HEADER: SECRET}
    )
    assert response.status == 200, await response.text()
    return "\n".join(api.texts(user.chat_id)[before:])


async def test_a_matter_told_with_its_place_is_filed_in_six_messages(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    user = TelegramUser()
    guess = await say(client, fake_api, user, STORY)
    assert "类别：环境保护" in guess and "地点：解放北路100号" in guess
    _, buttons = fake_api.keyboard(user.chat_id)
    assert ("1 对，继续", "1") in buttons and ("3 改地点", "3") in buttons
    assert "照片" in await press(client, fake_api, user, "1")
    for text in ("跳过", "张三", "13800138000"):
        await say(client, fake_api, user, text)
    receipt = await press(client, fake_api, user, "1")
    assert CODE.search(receipt)  # STORY, 1, 跳过, 张三, mobile, 1: six messages
    async with client.app[MINYI].db.session() as session:
        case = (await session.scalars(select(Case))).one()
    assert (case.channel, case.category, case.location_text, case.description) == (
        "telegram",
        "environment",
        "解放北路100号",
        STORY,
    )


async def test_a_wrong_place_costs_one_reply(client: TestClient, fake_api: FakeBotApi) -> None:
    user = TelegramUser()
    await say(client, fake_api, user, STORY)
    assert "事情发生在哪里" in await press(client, fake_api, user, "3")
    assert "照片" in await say(client, fake_api, user, "解放北路102号")
    for text in ("跳过", "张三", "13800138000"):
        await say(client, fake_api, user, text)
    assert CODE.search(await press(client, fake_api, user, "1"))
    async with client.app[MINYI].db.session() as session:
        case = (await session.scalars(select(Case))).one()
    assert (case.category, case.location_text) == ("environment", "解放北路102号")


async def test_one_s_own_case_is_followed_supplemented_and_urged(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    user = TelegramUser()
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过"):
        await say(client, fake_api, user, text)
    await say(client, fake_api, user, "张三")
    await say(client, fake_api, user, "13800138000")
    found = CODE.search(await say(client, fake_api, user, "1"))
    assert found is not None
    code = found.group()
    page = await say(client, fake_api, user, code)
    assert "办理经过" in page and "已登记" in page and "确认身份" not in page
    _, buttons = fake_api.keyboard(user.chat_id)
    assert buttons == [("1 补充材料", "1"), ("2 催办", "2")]
    assert "已为您催办" in await press(client, fake_api, user, "2")
    assert "刚催办过" in await say(client, fake_api, user, "催办")
    # The words with the code, on the case's page, do the same (not the page again).
    assert "刚催办过" in await say(client, fake_api, user, f"催办 {code}")
    assert "补充到事项" in await say(client, fake_api, user, "补充")
    assert "已补充到事项" in await say(client, fake_api, user, "灯杆底座也松了")
    done = await say(client, fake_api, user, "完成")
    assert "您补充了材料" in done and "您催办了一次" in done
    case = await get_case(client, code)
    types = [e["type"] for e in case["events"]]
    assert types.count("urged") == 1 and types.count("supplemented") == 1


async def test_an_anonymous_case_opens_in_another_chat_with_its_query_code(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    filer = TelegramUser(chat_id=1111111111)
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过"):
        await say(client, fake_api, filer, text)
    assert "工作人员无法打电话联系您" in await say(client, fake_api, filer, "匿名")
    receipt = await say(client, fake_api, filer, "1")
    code, query = CODE.search(receipt), QUERY.search(receipt)
    assert code is not None and query is not None
    other = TelegramUser(chat_id=2222222222)
    asked = await say(client, fake_api, other, code.group())
    assert asked == ZH["proof.ask.query_only"].format(code=code.group())  # no SMS set up
    assert "查询码不对" in await say(client, fake_api, other, "ZZZZZZZZ")
    page = await say(client, fake_api, other, query.group(1))
    assert ZH["proof.passed"] in page and code.group() in page
    # Proved once, this chat is not asked again.
    assert "确认身份" not in await say(client, fake_api, other, code.group())


async def test_a_typed_question_is_answered_and_thanks_get_the_menu(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    user = TelegramUser()
    answered = await say(client, fake_api, user, "多久能有答复？")
    assert "这解决了您的问题吗" in answered
    _, buttons = fake_api.keyboard(user.chat_id)
    assert [data for _, data in buttons] == ["1", "2"]
    thanks = await say(client, fake_api, user, "谢谢")
    assert "没看明白" not in thanks
    _, buttons = fake_api.keyboard(user.chat_id)
    assert buttons[0] == ("1 我要反映", "1")
