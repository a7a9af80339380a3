"""The staff duty group: alerts with buttons, claim, talk both ways, /done — members only."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from channels.telegram.webhook import SECRET_HEADER
from storage.models import StaffThread
from storage.uow import UnitOfWork

from ...conftest import Citizen, until_done
from .conftest import VirtualTime, app_client
from .fake_telegram import SECRET, FakeBotApi

STAFF_CHAT = -1001234567890
CITIZEN_CHAT = 2222222222
WANG = {"id": 42, "is_bot": False, "first_name": "王", "last_name": "芳"}
STRANGER = {"id": 99, "is_bot": False, "first_name": "路人"}
_IDS = itertools.count(900_000_000)


@pytest.fixture
async def client(
    aiohttp_client: Any, telegram_settings: Settings, virtual_time: VirtualTime
) -> TestClient:
    return await app_client(
        aiohttp_client, telegram_settings.replace(staff_telegram_chat=str(STAFF_CHAT)), virtual_time
    )


def group_message(
    sender: dict[str, Any], text: str, reply_to: int | None = None, chat: int = STAFF_CHAT
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_IDS) % 100000,
        "date": 1795000000,
        "chat": {"id": chat, "type": "supergroup", "title": "值班群"},
        "from": sender,
        "text": text,
    }
    if reply_to is not None:
        message["reply_to_message"] = {
            "message_id": reply_to,
            "date": 1795000000,
            "chat": message["chat"],
            "from": {"id": 7000000001, "is_bot": True, "first_name": "民意"},
            "text": "告警",
        }
    return {"update_id": next(_IDS), "message": message}


def press(sender: dict[str, Any], data: str, on_message: int) -> dict[str, Any]:
    update_id = next(_IDS)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": sender,
            "chat_instance": "staff",
            "data": data,
            "message": {
                "message_id": on_message,
                "date": 1795000000,
                "chat": {"id": STAFF_CHAT, "type": "supergroup", "title": "值班群"},
                "text": "告警",
            },
        },
    }


async def post(client: TestClient, update: dict[str, Any]) -> None:
    """An update from the group, and then what it queued (the citizen's notices) goes out."""
    response = await client.post("/telegram", json=update, headers={SECRET_HEADER: SECRET})
    assert response.status == 200, await response.text()
    await drain(client)


async def says(client: TestClient, citizen: Citizen, text: str) -> str:
    """The citizen writes; what it queued for staff (their words in the group) goes out."""
    answer = await citizen.say(text)
    await drain(client)
    return answer


async def drain(client: TestClient) -> None:
    notifier = client.app[MINYI].notifier
    await until_done(notifier.run_once)


async def handoff(
    client: TestClient, fake_api: FakeBotApi, with_case: bool = True
) -> tuple[Citizen, int, str]:
    citizen = Citizen(client.app[MINYI], sender=str(CITIZEN_CHAT), channel="telegram")
    code = ""
    if with_case:
        code = (await citizen.file_a_matter()).split("编号是 ")[1].split("，")[0]
    await citizen.say("人工")
    await drain(client)
    alert_id, buttons = fake_api.keyboard(STAFF_CHAT)
    assert [label for label, _ in buttons] == ["认领", "查看"]
    return citizen, alert_id, code


async def timeline(client: TestClient, code: str) -> list[tuple[str, str, dict[str, Any]]]:
    runtime = client.app[MINYI]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        return [(e.type, e.actor, e.data) for e in await uow.events.events(case)]


async def test_claim_and_reply_to_relay_both_ways_onto_the_timeline(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    citizen, alert_id, code = await handoff(client, fake_api)
    _, buttons = fake_api.keyboard(STAFF_CHAT)
    await post(client, press(WANG, buttons[0][1], alert_id))  # 认领
    assert "工作人员王 芳已接手" in fake_api.texts(CITIZEN_CHAT)[-1]
    assert "王 芳 已认领" in fake_api.texts(STAFF_CHAT)[-1]

    await post(client, group_message(WANG, "您好，路灯具体在哪根杆子？", reply_to=alert_id))
    assert fake_api.texts(CITIZEN_CHAT)[-1] == "工作人员王 芳：您好，路灯具体在哪根杆子？"

    assert (
        await says(client, citizen, "东门进去第三根，编号08") == ""
    )  # to the staff member, not the engine
    relayed = fake_api.sent(STAFF_CHAT)[-1]
    assert relayed["text"] == "💬 群众：东门进去第三根，编号08"
    assert relayed["reply_parameters"]["message_id"] == alert_id

    relayed_id = fake_api.called("sendMessage")[-1].result["message_id"]
    await post(
        client, group_message(WANG, "好的，今天就派人去。", reply_to=relayed_id)
    )  # replying to the relay works too
    assert fake_api.texts(CITIZEN_CHAT)[-1] == "工作人员王 芳：好的，今天就派人去。"

    await post(client, group_message(WANG, "/done", reply_to=alert_id))
    assert "结束本次对话" in fake_api.texts(CITIZEN_CHAT)[-1]
    assert "1 我要反映" in await citizen.say("菜单")  # back to the engine

    events = [
        (kind, actor, data.get("text", "")) for kind, actor, data in await timeline(client, code)
    ]
    assert ("staff.claimed", "staff:王 芳", "") in events
    assert ("staff.message", "staff:王 芳", "您好，路灯具体在哪根杆子？") in events
    assert ("citizen.message", "citizen:telegram", "东门进去第三根，编号08") in events
    assert ("staff.message", "staff:王 芳", "好的，今天就派人去。") in events
    staff_steps = [kind for kind, _, _ in events if kind.startswith("staff.")]
    assert staff_steps[-1] == "staff.done"


async def test_show_gives_the_case_with_the_phone_masked(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    _, alert_id, code = await handoff(client, fake_api)
    _, buttons = fake_api.keyboard(STAFF_CHAT)
    await post(client, press(WANG, buttons[1][1], alert_id))  # 查看
    shown = fake_api.texts(STAFF_CHAT)[-1]
    assert (
        code in shown and "138****8000" in shown and "13800138000" not in shown and "张*" in shown
    )
    assert "submitted" in shown


async def test_a_non_member_in_the_staff_chat_changes_nothing(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    _, alert_id, code = await handoff(client, fake_api)
    fake_api.members[STRANGER["id"]] = "left"
    before = list(fake_api.texts(CITIZEN_CHAT))
    _, buttons = fake_api.keyboard(STAFF_CHAT)
    await post(client, press(STRANGER, buttons[0][1], alert_id))
    await post(client, group_message(STRANGER, "我来说两句", reply_to=alert_id))
    assert fake_api.texts(CITIZEN_CHAT) == before
    runtime = client.app[MINYI]
    async with runtime.db.session() as session:
        thread = (await session.scalars(select(StaffThread))).one()
    assert thread.claimed_at is None
    assert not any(kind.startswith("staff.") for kind, _, _ in await timeline(client, code))


async def test_replies_from_another_chat_are_ignored(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    _, alert_id, _ = await handoff(client, fake_api)
    before = list(fake_api.texts(CITIZEN_CHAT))
    await post(client, group_message(WANG, "从别的群说话", reply_to=alert_id, chat=-100999))
    assert fake_api.texts(CITIZEN_CHAT) == before


async def test_a_handoff_before_any_case_can_still_be_answered(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    citizen, alert_id, _ = await handoff(client, fake_api, with_case=False)
    await post(
        client, group_message(WANG, "您好，有什么可以帮您？", reply_to=alert_id)
    )  # replying claims it
    assert fake_api.texts(CITIZEN_CHAT)[-1] == "工作人员王 芳：您好，有什么可以帮您？"
    assert await says(client, citizen, "我想问问低保怎么申请") == ""
    assert fake_api.texts(STAFF_CHAT)[-1] == "💬 群众：我想问问低保怎么申请"


async def test_a_second_claim_is_refused_and_a_redelivered_press_is_taken_once(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    _, alert_id, _ = await handoff(client, fake_api)
    _, buttons = fake_api.keyboard(STAFF_CHAT)
    claim = press(WANG, buttons[0][1], alert_id)
    await post(client, claim)
    await post(client, claim)  # Telegram re-delivers
    joined = [t for t in fake_api.texts(CITIZEN_CHAT) if "已接手" in t]
    assert len(joined) == 1
    await post(
        client, press({"id": 43, "is_bot": False, "first_name": "李明"}, buttons[0][1], alert_id)
    )
    assert fake_api.texts(STAFF_CHAT)[-1] == "已由王 芳认领。"


async def test_staff_talk_with_a_citizen_who_wrote_on_wechat(
    aiohttp_client: Any,
    telegram_settings: Settings,
    virtual_time: VirtualTime,
    fake_api: FakeBotApi,
    fake_wechat: Any,
) -> None:
    """The duty group answers a WeChat citizen: words go out as customer-service messages."""
    from ..conftest import wechat_settings

    settings = wechat_settings(
        telegram_settings.replace(staff_telegram_chat=str(STAFF_CHAT)), fake_wechat
    )
    client = await app_client(aiohttp_client, settings, virtual_time)
    openid = "oK8Yq6Dp2fXvN3sLw0hTzR1aBcDe"
    citizen = Citizen(client.app[MINYI], sender=openid, channel="wechat")
    code = (await citizen.file_a_matter()).split("编号是 ")[1].split("，")[0]
    await citizen.say("人工")
    fake_wechat.heard(openid)  # the engine is fed directly here; WeChat saw the citizen write
    await drain(client)
    alert_id, _ = fake_api.keyboard(STAFF_CHAT)
    await post(
        client, group_message(WANG, "您好，我是值班的王芳，路灯今天下午修。", reply_to=alert_id)
    )
    assert (
        fake_wechat.texts_to(openid)[-1] == "工作人员王 芳：您好，我是值班的王芳，路灯今天下午修。"
    )
    assert await says(client, citizen, "好的，谢谢") == ""
    assert fake_api.texts(STAFF_CHAT)[-1] == "💬 群众：好的，谢谢"
    kinds = [(kind, data.get("route", "")) for kind, _, data in await timeline(client, code)]
    assert ("staff.message", "") in kinds and ("citizen.message", "") in kinds
    assert ("notification.sent", "wechat") in kinds  # the staff member's words, as a CS message
