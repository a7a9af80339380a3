"""The notifier reaching a WeChat citizen through the real channel and the fake WeChat API."""

from __future__ import annotations

import re
from typing import Any

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app

from ..test_notifications import accept, drain, timeline
from .conftest import wechat_settings
from .wechat_kit import FakeWeChatApi, WeChatCitizen, WeChatServer

TEMPLATE = {
    "wechat_template_id": "tmpl-status-1",
    "wechat_template_fields": (("code", "character_string1"), ("status", "phrase2")),
}


async def filed(citizen: WeChatCitizen) -> str:
    for text in ("1", "1", "物业不给修漏水的屋顶，已经三个月了", "幸福小区", "跳过", "李四"):
        await citizen.say(text)
    await citizen.say("13900139000")
    answer = await citizen.say("1")
    if "同一件事吗" in answer:  # the same matter filed again: this test wants a new case
        answer = await citizen.say("2")
    code = re.search(r"XF\d{8}-[0-9A-Z]{6}", answer)
    assert code
    return code.group()


async def test_within_48_hours_the_citizen_gets_a_customer_service_message(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    app = create_app(wechat_settings(settings, fake_wechat, **TEMPLATE), workers=False)
    citizen = WeChatCitizen(await aiohttp_client(app), WeChatServer(api=fake_wechat))
    code = await filed(citizen)
    runtime = citizen.client.app[MINYI]
    await accept(runtime, code)
    await drain(runtime)
    [message] = fake_wechat.texts_to(citizen.openid)
    assert code in message and "已受理" in message
    assert fake_wechat.of("message/template/send") == []
    routes = [d.get("route") for t, d in await timeline(runtime, code) if t == "notification.sent"]
    assert routes == ["wechat"]


async def test_outside_48_hours_a_template_message_goes_and_its_receipt_is_recorded(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    app = create_app(wechat_settings(settings, fake_wechat, **TEMPLATE), workers=False)
    citizen = WeChatCitizen(await aiohttp_client(app), WeChatServer(api=fake_wechat))
    code = await filed(citizen)
    runtime = citizen.client.app[MINYI]
    fake_wechat.elapse(48 * 3600 + 1)  # the citizen's last message is two days old
    await accept(runtime, code)
    await drain(runtime)
    [template] = fake_wechat.of("message/template/send")
    assert template.json["data"] == {
        "character_string1": {"value": code},
        "phrase2": {"value": "已受理"},
    }
    msg_id = str(fake_wechat.sent_templates[(citizen.openid, template.json["client_msg_id"])])
    # WeChat reports the template job's outcome later, as a push to the callback.
    receipt = await citizen.send("event_templatesendjobfinish", MsgID=int(msg_id), Status="success")
    assert receipt.status == 200
    events = await timeline(runtime, code)
    kinds = [(t, d.get("route")) for t, d in events if t.startswith("notification.")]
    assert kinds[:2] == [
        ("notification.attempt_failed", "wechat"),
        ("notification.sent", "wechat_template"),
    ]
    assert events[-1] == (
        "notification.delivery",
        {"message_id": msg_id, "delivered": True, "status": "success", "detail": ""},
    )


async def test_past_the_five_messages_of_the_window_a_template_carries_the_notice(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    """One message from the citizen opens five customer-service messages; the sixth notice of
    that window must still reach them (as a template), not be lost or retried for ever."""
    app = create_app(wechat_settings(settings, fake_wechat, **TEMPLATE), workers=False)
    citizen = WeChatCitizen(await aiohttp_client(app), WeChatServer(api=fake_wechat))
    codes = [await filed(citizen), await filed(citizen)]
    runtime = citizen.client.app[MINYI]
    auth = {"Authorization": "Bearer test-token"}
    for body in (
        {"type": "accepted"},
        {"type": "extended", "reason": "需要会商", "days": 10},
        {"type": "replied", "note": "已修复。"},
    ):
        for code in codes:
            response = await citizen.client.post(
                f"/api/v1/cases/{code}/events", json=body, headers=auth
            )
            assert response.status == 200, await response.text()
    await drain(runtime)
    assert len(fake_wechat.texts_to(citizen.openid, delivered=True)) == 5
    [template] = fake_wechat.of("message/template/send")
    late = template.json["data"]["character_string1"]["value"]
    routes = [d.get("route") for t, d in await timeline(runtime, late) if t == "notification.sent"]
    assert routes[-1] == "wechat_template"
    sent = [
        d.get("route")
        for code in codes
        for t, d in await timeline(runtime, code)
        if t == "notification.sent"
    ]
    assert sorted(sent) == ["wechat"] * 5 + ["wechat_template"]
