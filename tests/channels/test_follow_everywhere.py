"""Filed on WeChat, followed from the web page (issue 17): every message through the real
callbacks — the official account's, the web chat's — and the 验证码 through the SMS gateway."""

from __future__ import annotations

import re
from typing import Any

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from conversation.catalog import ZH
from tests.conftest import until_done
from tests.web_citizen import WebCitizen, get_case

from .conftest import wechat_client, wechat_settings
from .sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app
from .wechat_kit import FakeWeChatApi, WeChatCitizen, WeChatServer

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
SIX = re.compile(r"\d{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")


async def test_filed_on_wechat_followed_on_the_web_page_after_an_sms_code(
    aiohttp_client: Any,
    aiohttp_server: Any,
    database_settings: Settings,
    fake_wechat: FakeWeChatApi,
) -> None:
    gateway = FakeProvider()
    sms = await aiohttp_server(http_gateway_app(gateway))
    settings = wechat_settings(database_settings, fake_wechat).replace(
        sms_provider="http",
        sms_api_base=str(sms.make_url("")).rstrip("/"),
        sms_webhook_secret=HTTP_SECRET,
    )
    client = await wechat_client(aiohttp_client, settings)
    wechat = WeChatCitizen(client, WeChatServer("safe", api=fake_wechat))
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过"):
        await wechat.say(text)
    await wechat.say("张三")
    await wechat.say("13800138000")
    found = CODE.search(await wechat.say("1"))
    assert found is not None
    code = found.group()

    web = WebCitizen(client)
    asked = await web.say(code)
    assert "确认身份" in asked and "张三" not in asked
    assert "尾号 8000" in await web.say("1")
    await until_done(client.app[MINYI].notifier.run_once)
    [text] = [r.fields["text"] for r in gateway.requests if "验证码" in r.fields["text"]]
    texted = SIX.search(text)
    assert texted is not None
    page = await web.say(texted.group())
    assert ZH["proof.passed"] in page and "办理经过" in page and ZH["status.can"] in page
    # The web page now follows it as its own: 补充 from there reaches the same case.
    await web.say("1")
    assert "已补充到事项" in await web.say("路灯杆底座也松了，风大时会晃。")
    case = await get_case(client, code)
    assert [e["type"] for e in case["events"] if e["type"].startswith(("proof.", "supp"))] == [
        "proof.code_sent",
        "proof.passed",
        "supplemented",
    ]
    # And WeChat still sees it without being asked anything.
    assert "确认身份" not in await wechat.say(code)


async def test_anonymous_on_the_web_page_followed_on_wechat_with_the_query_code(
    aiohttp_client: Any, database_settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    client = await wechat_client(aiohttp_client, wechat_settings(database_settings, fake_wechat))
    web = WebCitizen(client)
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过"):
        await web.say(text)
    assert "工作人员无法打电话联系您" in await web.say("匿名")
    receipt = await web.say("1")
    code, query = CODE.search(receipt), QUERY.search(receipt)
    assert code is not None and query is not None
    wechat = WeChatCitizen(client, WeChatServer("safe", api=fake_wechat))
    asked = await wechat.say(code.group())
    assert asked == ZH["proof.ask.query_only"].format(code=code.group())  # no SMS set up
    assert "查询码不对" in await wechat.say("ZZZZZZZZ")
    page = await wechat.say(query.group(1))
    assert ZH["proof.passed"] in page and code.group() in page
