"""Proof by 验证码 over the real SMS path: the notifier texts it through the SMS channel to the
local fake gateway, and the citizen on another channel answers with what was really sent."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from conversation.catalog import ZH
from storage.models import Notification

from .channels.sms_fakes import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    ALIYUN_SIGN,
    HTTP_SECRET,
    FakeProvider,
    aliyun_app,
    http_gateway_app,
)
from .conftest import Citizen, sqlite_settings

AUTH = {"Authorization": "Bearer test-token"}
CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
DIGITS = re.compile(r"\d{6}")


async def test_the_code_is_texted_to_the_mobile_on_file_and_opens_the_case(
    aiohttp_client: Any, aiohttp_server: Any, database_settings: Settings
) -> None:
    gateway = FakeProvider()
    server = await aiohttp_server(http_gateway_app(gateway))
    settings = database_settings.replace(
        sms_provider="http",
        sms_api_base=str(server.make_url("")).rstrip("/"),
        sms_webhook_secret=HTTP_SECRET,
    )
    client: TestClient = await aiohttp_client(create_app(settings, workers=False))
    runtime = client.server.app[MINYI]
    match = CODE.search(await Citizen(runtime, "openid-1", "wechat").file_a_matter())
    assert match is not None
    code = match.group()
    web = Citizen(runtime, "web-session-9", "webchat")
    assert "确认身份" in await web.say(code)
    assert "尾号 8000" in await web.say("1")
    while await runtime.notifier.run_once():
        pass
    [sent] = [r for r in gateway.requests if "验证码" in r.fields["text"]]
    assert sent.authentic and sent.fields["to"] == "+8613800138000"
    texted = DIGITS.search(sent.fields["text"])
    assert texted is not None
    page = await web.say(texted.group())
    assert ZH["proof.passed"] in page and code in page
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    types = [e["type"] for e in case["events"]]
    assert "proof.code_sent" in types and "proof.passed" in types
    assert [e["data"]["topic"] for e in case["events"] if e["type"] == "notification.sent"][
        -1
    ] == "proof_sms"
    # The code never sits in the clear in the job that carried it.
    async with runtime.units() as uow:
        jobs = list(await uow.session.scalars(select(Notification)))
        assert all(texted.group() not in str(job.payload) for job in jobs)


async def test_without_sms_only_the_query_code_is_asked_for(
    aiohttp_client: Any, database_settings: Settings
) -> None:
    client: TestClient = await aiohttp_client(create_app(database_settings, workers=False))
    runtime = client.server.app[MINYI]
    match = CODE.search(await Citizen(runtime, "openid-1", "wechat").file_a_matter())
    assert match is not None
    asked = await Citizen(runtime, "web-1", "webchat").say(match.group())
    assert asked == ZH["proof.ask.query_only"].format(code=match.group())


ALIYUN = {
    "sms_provider": "aliyun",
    "sms_access_key_id": ALIYUN_KEY_ID,
    "sms_access_key_secret": ALIYUN_SECRET,
    "sms_sign_name": ALIYUN_SIGN,
    "sms_template_notice": "SMS_100001",
    "sms_template_survey": "SMS_100002",
    "sms_webhook_secret": "path-secret-0123456789abcdef",
}


async def test_a_template_provider_texts_the_code_with_its_approved_template(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: object
) -> None:
    """Alibaba sends approved templates only: MINYI_SMS_TEMPLATE_VERIFICATION carries the
    code as its one parameter, and the fake checks the signature, the sign and the template."""
    gateway = FakeProvider()
    server = await aiohttp_server(aliyun_app(gateway))
    base = str(server.make_url("")).rstrip("/")
    settings = sqlite_settings(
        tmp_path, sms_api_base=base, sms_template_verification="SMS_100003", **ALIYUN
    )
    client: TestClient = await aiohttp_client(create_app(settings, workers=False))
    runtime = client.server.app[MINYI]
    match = CODE.search(await Citizen(runtime, "openid-1", "wechat").file_a_matter())
    assert match is not None
    relative = Citizen(runtime, "tg-7", "telegram")
    await relative.say(match.group())
    assert "尾号 8000" in await relative.say("1")
    while await runtime.notifier.run_once():
        pass
    [sent] = [r for r in gateway.requests if r.fields.get("TemplateCode") == "SMS_100003"]
    assert sent.authentic and sent.fields["PhoneNumbers"] == "13800138000"
    code = json.loads(sent.fields["TemplateParam"])["code"]
    assert ZH["proof.passed"] in await relative.say(code)


async def test_without_an_approved_template_no_code_is_promised(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: object
) -> None:
    server = await aiohttp_server(aliyun_app(FakeProvider()))
    settings = sqlite_settings(
        tmp_path, sms_api_base=str(server.make_url("")).rstrip("/"), **ALIYUN
    )
    client: TestClient = await aiohttp_client(create_app(settings, workers=False))
    runtime = client.server.app[MINYI]
    match = CODE.search(await Citizen(runtime, "openid-1", "wechat").file_a_matter())
    assert match is not None
    asked = await Citizen(runtime, "tg-7", "telegram").say(match.group())
    assert asked == ZH["proof.ask.query_only"].format(code=match.group())
