"""Filed on WeChat, followed from the web page (issue 17): every message through the real
callbacks — the official account's, the web chat's — and the 验证码 through the SMS gateway."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from conversation.catalog import ZH
from conversation.sms_answer import SMS_MAX_CHARS
from storage.models import Identity, Notification
from tests.conftest import until_done
from tests.web_citizen import WebCitizen, get_case

from .conftest import wechat_client, wechat_settings
from .sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app, http_push_headers
from .wechat_kit import FakeWeChatApi, WeChatCitizen, WeChatServer

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
SIX = re.compile(r"\d{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")
MOBILE = "+8613800138000"
_ids = itertools.count()


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


async def sms_says(client: Any, gateway: FakeProvider, text: str, phone: str = MOBILE) -> str:
    """A text pushed to the real webhook, worked by the real `sms-replies` job; the SMS Minyi
    then sent back, as the gateway received it ("" when none)."""
    runtime = client.app[MINYI]
    before = len(gateway.requests)
    body = json.dumps(
        {"from": phone, "text": text, "id": f"sms-{next(_ids)}"}, ensure_ascii=False
    ).encode()
    response = await client.post("/sms/http/inbound", data=body, headers=http_push_headers(body))
    assert response.status == 200, await response.text()
    await until_done(runtime.sms_inbox.work_once)
    await until_done(runtime.notifier.run_once)
    sent = gateway.requests[before:]
    assert all(r.authentic and r.fields["to"] == phone for r in sent)
    return "\n".join(r.fields["text"] for r in sent)


async def test_filed_on_wechat_followed_on_the_web_page_and_by_sms(
    aiohttp_client: Any,
    aiohttp_server: Any,
    settings: Settings,
    fake_wechat: FakeWeChatApi,
) -> None:
    gateway = FakeProvider()
    sms = await aiohttp_server(http_gateway_app(gateway))
    settings = wechat_settings(settings, fake_wechat).replace(
        sms_provider="http",
        sms_api_base=str(sms.make_url("")).rstrip("/"),
        sms_webhook_secret=HTTP_SECRET,
    )
    client = await wechat_client(aiohttp_client, settings)
    wechat = WeChatCitizen(client, WeChatServer("safe", api=fake_wechat))
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过", "张三"):
        await wechat.say(text)
    await wechat.say("13800138000")
    found = CODE.search(await wechat.say("1"))
    assert found is not None
    code = found.group()
    await until_done(client.app[MINYI].notifier.run_once)
    gateway.requests.clear()

    # On the web page, a stranger to the case until the 验证码 proves them.
    web = WebCitizen(client)
    assert "确认身份" in await web.say(code)
    await web.say("1")
    await until_done(client.app[MINYI].notifier.run_once)
    [texted] = [SIX.search(r.fields["text"]) for r in gateway.requests]
    assert texted is not None
    assert ZH["proof.passed"] in await web.say(texted.group())

    # By SMS from the mobile on file: the case is the sender's own, no proof asked.
    page = await sms_says(client, gateway, code)
    assert code in page and "确认身份" not in page and "办理经过" in page
    assert "1 补充材料" in page and "2 催办" in page  # the choices on one line
    assert len(page) <= SMS_MAX_CHARS
    # 催办 by its number on the page, 补充 by its word; both reach the same case.
    assert "已为您催办" in await sms_says(client, gateway, "2")
    assert "请用短信发送要补充" in await sms_says(client, gateway, "补充")
    assert "已补充到事项" in await sms_says(client, gateway, "路灯杆底座也松了")
    assert "补充完了" in await sms_says(client, gateway, "完成")
    # The menu by SMS offers what SMS can do, and says where new matters go.
    menu = await sms_says(client, gateway, "菜单")
    assert "2 进度查询  3 评价" in menu and "1 我要反映" not in menu and "12345" in menu
    # Filing is not done by SMS: where to file instead, warmly, with the hotline.
    elsewhere = await sms_says(client, gateway, "我家楼下的垃圾好几天没人清运了，臭得很")
    assert "不能登记新事项" in elsewhere and "12345" in elsewhere
    assert "12345" in await sms_says(client, gateway, "人工")
    # Another mobile is a stranger: the code alone opens nothing.
    stranger = await sms_says(client, gateway, code, phone="+8613900139000")
    assert "确认身份" in stranger and "办理经过" not in stranger
    case = await get_case(client, code)
    types = [e["type"] for e in case["events"]]
    assert types.count("urged") == 1 and types.count("supplemented") == 1
    supplemented = next(e for e in case["events"] if e["type"] == "supplemented")
    assert supplemented["actor"] == "citizen:sms"
    # The mobile is nowhere in the clear: not the conversation's sender, not the jobs.
    async with client.app[MINYI].units() as uow:
        senders = list(await uow.session.scalars(select(Identity.external_id)))
        payloads = [str(n.payload) for n in await uow.session.scalars(select(Notification))]
    assert not any("13800138000" in s for s in senders + payloads)
    # And WeChat still sees it as its own.
    assert "确认身份" not in await wechat.say(code)
