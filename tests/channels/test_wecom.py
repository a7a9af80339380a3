"""The WeCom app, both ways: alert cards to the staff on duty, 认领 / 查看 / words / 结束 from a
mapped staff member, the citizen's words back to them — and everything else refused."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Notification
from storage.staff import StaffAccounts

from ..conftest import Citizen
from .wecom_kit import FakeWeComApi, WeComMember, wecom_env

ZHANG = "zhangsan"


@pytest.fixture
async def fake_wecom(aiohttp_server: Any) -> FakeWeComApi:
    fake = FakeWeComApi(members={ZHANG, "lisi"})
    server = await aiohttp_server(fake.app)
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, fake_wecom: FakeWeComApi) -> TestClient:
    app = create_app(settings.replace(**wecom_env(fake_wecom.base)), workers=False)
    client: TestClient = await aiohttp_client(app)
    async with client.server.app[MINYI].units() as uow:
        accounts = StaffAccounts(uow.session)
        await accounts.add("zhangsan", "张三丰", "staff", "x", wecom_userid=ZHANG)
        await uow.commit()
    return client


async def drain(client: TestClient) -> None:
    notifier = client.server.app[MINYI].notifier
    for _ in range(20):
        if not await notifier.run_once():
            return


async def filed(client: TestClient, sender: str = "c-1") -> tuple[Citizen, str]:
    citizen = Citizen(client.server.app[MINYI], sender=sender)
    reply = await citizen.file_a_matter()
    return citizen, reply.split("编号是 ")[1].split("，")[0]


async def test_a_handoff_reaches_the_staff_on_duty_as_a_card_with_buttons(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    citizen, code = await filed(client)
    await citizen.say("人工")
    await drain(client)
    [card] = fake_wecom.delivered_to(ZHANG)
    assert card.msgtype == "template_card"
    body = card.body["template_card"]
    assert body["main_title"]["title"] == "群众要求人工服务" and body["main_title"]["desc"] == code
    assert [b["text"] for b in body["button_list"]] == ["认领", "查看"]
    assert "138****8000" in body["sub_title_text"] and "13800138000" not in str(body)
    assert fake_wecom.delivered_to("lisi") == []  # no account: not on duty


async def test_claim_by_code_talk_both_ways_and_end(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    citizen, code = await filed(client)
    zhang = WeComMember(client, ZHANG)
    assert await zhang.says(f"认领 {code}") == 200
    await drain(client)
    assert f"已认领{code}" in fake_wecom.texts_to(ZHANG)[-1]
    await zhang.says("您好，我是张三丰，路灯明天修。")
    await drain(client)
    mailbox = await client.server.app[MINYI].channels["webchat"].mailbox.take("c-1")  # type: ignore[attr-defined]
    texts = [reply.text for reply in mailbox]
    assert "工作人员张三丰已接手" in texts[0]
    assert "工作人员张三丰：您好，我是张三丰，路灯明天修。" in texts
    assert await citizen.say("好的谢谢，是东门那根") == ""
    await drain(client)
    assert fake_wecom.texts_to(ZHANG)[-1] == "💬 群众：好的谢谢，是东门那根"
    await zhang.says("结束")
    await drain(client)
    assert "已结束" in fake_wecom.texts_to(ZHANG)[-1]
    assert "1 我要反映" in await citizen.say("菜单")  # the bot again


async def test_the_card_button_claims_and_shows(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    citizen, code = await filed(client)
    await citizen.say("人工")
    await drain(client)
    [card] = fake_wecom.delivered_to(ZHANG)
    claim, show = (b["key"] for b in card.body["template_card"]["button_list"])
    zhang = WeComMember(client, ZHANG)
    assert await zhang.presses(show) == 200
    assert code in fake_wecom.texts_to(ZHANG)[-1] and "张*" in fake_wecom.texts_to(ZHANG)[-1]
    assert await zhang.presses(claim) == 200
    await drain(client)
    assert "已认领" in fake_wecom.texts_to(ZHANG)[-1]
    assert await citizen.say("我还有照片") == ""


async def test_an_unmapped_userid_is_told_and_nothing_reaches_the_citizen(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    citizen, code = await filed(client)
    stranger = WeComMember(client, "lisi")
    assert await stranger.says(f"认领 {code}") == 200
    assert await stranger.says("我来说两句") == 200
    await drain(client)
    told = fake_wecom.texts_to("lisi")
    assert len(told) == 2 and all("还没有民意的账号" in text for text in told)
    assert "1 我要反映" in await citizen.say("菜单")  # nobody took the conversation


async def test_a_redelivered_message_is_taken_once(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    _, code = await filed(client)
    zhang = WeComMember(client, ZHANG)
    await zhang.says(f"认领 {code}")
    for _ in range(3):  # WeCom re-sends what it heard nothing about
        assert await zhang.says("请问具体位置？", msg_id="7001") == 200
    await drain(client)
    mailbox = await client.server.app[MINYI].channels["webchat"].mailbox.take("c-1")  # type: ignore[attr-defined]
    assert [r.text for r in mailbox].count("工作人员张三丰：请问具体位置？") == 1


async def test_words_without_a_claimed_conversation_explain_how(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    zhang = WeComMember(client, ZHANG)
    await zhang.says("你好")
    assert "认领 事项编号" in fake_wecom.texts_to(ZHANG)[-1]
    await zhang.says("认领 XF20261130-ZZZZZZ")
    assert "没有找到事项 XF20261130-ZZZZZZ" in fake_wecom.texts_to(ZHANG)[-1]


async def test_forged_or_stale_callbacks_are_refused_and_store_nothing(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    _, code = await filed(client)
    zhang = WeComMember(client, ZHANG)
    query, body = zhang.seal(zhang.text_xml(f"认领 {code}"))
    forged = {**query, "msg_signature": "0" * 40}
    assert (await client.post("/wecom", params=forged, data=body)).status == 403
    assert await zhang.post(zhang.text_xml(f"认领 {code}"), timestamp=1_700_000_000) == 403
    unsigned = await client.post("/wecom", data=body)
    assert unsigned.status == 403
    assert (await client.post("/wecom", params=query, data=b"<xml><a>")).status == 400
    assert fake_wecom.sent == []
    metrics = await (await client.get("/metrics")).text()
    assert 'minyi_webhook_rejected_total{channel="wecom",reason="signature"} 1.0' in metrics


async def test_the_url_check_answers_the_decrypted_echostr(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    zhang = WeComMember(client, ZHANG)
    params = zhang.url_check("echo-12345")
    answer = await client.get("/wecom", params=params)
    assert answer.status == 200 and await answer.text() == "echo-12345"
    assert (await client.get("/wecom", params={**params, "msg_signature": "f" * 40})).status == 403
    stale = zhang.url_check("echo-12345", timestamp=1_700_000_000)
    assert (await client.get("/wecom", params=stale)).status == 403


async def test_an_expired_token_is_refreshed_once(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    zhang = WeComMember(client, ZHANG)
    await zhang.says("你好")
    fetched = fake_wecom.token_fetches
    fake_wecom.expire_next = True
    await zhang.says("再问一次")
    assert fake_wecom.token_fetches == fetched + 1 and len(fake_wecom.texts_to(ZHANG)) == 2


async def test_never_more_than_wecom_takes_in_a_minute(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    """WeCom drops the 31st message of a minute silently; Minyi holds it instead."""
    for n in range(35):
        citizen = Citizen(client.server.app[MINYI], sender=f"needs-{n}")
        await citizen.say("人工")
    await drain(client)
    assert len([s for s in fake_wecom.sent if s.touser == ZHANG]) <= 30
    assert all(s.delivered for s in fake_wecom.sent)  # nothing was dropped silently
    async with client.server.app[MINYI].units() as uow:
        waiting = await uow.session.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == "pending")
        )
    assert waiting and waiting >= 5  # held for the next minute, not lost


async def test_a_supervision_alert_goes_to_its_levels_people(
    client: TestClient, fake_wecom: FakeWeComApi
) -> None:
    """督办 level 1 is for the handling department's staff: on WeCom, to them alone."""
    from datetime import timedelta

    from bot.backoffice import deadline_watch
    from conversation.cases.progress import Progress
    from storage.lifecycle import record_progress
    from storage.models import utcnow

    runtime = client.server.app[MINYI]
    async with runtime.units() as uow:
        await StaffAccounts(uow.session).add(
            "lisi", "李四", "staff", "x", department="cgj", wecom_userid="lisi"
        )
        await uow.commit()
    _, code = await filed(client)
    now = utcnow()
    async with runtime.units() as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step in (Progress("accepted"), Progress("assigned", department="cgj")):
            await record_progress(uow, case, step, runtime.deadlines, now)
        lapse = min(s["due_at"] for s in case.stages)  # the first stage only: level 1
        await uow.commit()
    from datetime import datetime

    later = datetime.fromisoformat(lapse) + timedelta(minutes=1)
    await deadline_watch.scan(runtime.units, runtime.deadlines, later, runtime.office.escalation)
    await drain(client)
    to_lisi = [t for t in fake_wecom.texts_to("lisi") if "督办升级" in t]
    assert to_lisi and "承办单位（区城管局）" in to_lisi[0]
    assert not [t for t in fake_wecom.texts_to(ZHANG) if "督办升级" in t]  # not at this level
    # The deadline alerts themselves still go to everyone on duty.
    assert [t for t in fake_wecom.texts_to(ZHANG) if "已超期" in t]


async def test_a_photo_in_the_thread_reaches_wecom_as_a_link_to_the_desk(
    aiohttp_client: Any, settings: Settings, fake_wecom: FakeWeComApi
) -> None:
    public = settings.replace(**wecom_env(fake_wecom.base), public_url="https://minyi.example.cn")
    client: TestClient = await aiohttp_client(create_app(public, workers=False))
    async with client.server.app[MINYI].units() as uow:
        await StaffAccounts(uow.session).add("zhangsan", "张三丰", "staff", "x", wecom_userid=ZHANG)
        await uow.commit()
    citizen, code = await filed(client)
    assert await WeComMember(client, ZHANG).says(f"认领 {code}") == 200
    await drain(client)
    assert await citizen.photo("wx-media-7") == ""  # to the person, not the bot
    await drain(client)
    relayed = fake_wecom.texts_to(ZHANG)[-1]
    assert relayed.startswith(f"💬 群众：[照片] https://minyi.example.cn/desk/cases/{code}/photos/")
