"""A citizen on a safe-mode official account does everything of the conversation, once."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from storage.models import Attachment, Case, Identity

from .conftest import wechat_settings
from .wechat_kit import OPENID, FakeWeChatApi, WeChatCitizen, WeChatServer

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


async def rows(citizen: WeChatCitizen, model: type) -> list[Any]:
    async with citizen.client.app[MINYI].db.session() as session:
        return list(await session.scalars(select(model)))


async def test_complete_filing_with_a_location_a_photo_a_video_and_a_voice_note(
    citizen_on_wechat: WeChatCitizen, fake_wechat: FakeWeChatApi
) -> None:
    citizen = citizen_on_wechat
    hello = await citizen.send("event_subscribe_qrscene")
    assert "您好" in hello.text and "1 我要反映" in hello.text
    assert "类别" in await citizen.say("我要反映")
    assert "事情经过" in await citizen.say("4")
    voice = await citizen.send("voice")
    assert "已收到您的语音" in voice.text and "事情经过" in voice.text
    assert "地址" in await citizen.say("小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。")
    at_photos = await citizen.send("location")
    assert "照片" in at_photos.text
    assert "第1张" in (await citizen.send("image")).text
    assert "第2张" in (await citizen.send("shortvideo")).text
    assert "姓名" in await citizen.say("完成")
    assert "手机" in await citizen.say("张三")
    summary = await citizen.say("13800138000")
    assert "广东省广州市天河区天河路385号" in summary and "2张" in summary and "1 提交" in summary
    done = await citizen.say("1")
    code = CODE.search(done)
    assert code and "15日内" in done

    [case] = await rows(citizen, Case)
    assert (case.code, case.channel, case.source) == (code.group(), "wechat", "town-xingfu-grid-07")
    assert (case.lat, case.lng) == (23.134521, 113.358803)
    assert case.location_text == "广东省广州市天河区天河路385号"
    attachments = {a.kind: a for a in await rows(citizen, Attachment)}
    assert set(attachments) == {"image", "video", "voice"}
    assert attachments["image"].url.startswith("http://mmbiz.qpic.cn/")
    assert attachments["image"].ref.startswith("n3Hd8cYbTz0kD2vQ")

    # The menu's "进度查询" button finds it; everything was answered passively.
    status = await citizen.send("event_click", EventKey="status")
    assert code.group() in status.text
    assert fake_wechat.of("message/custom/send") == []


async def test_a_recognised_voice_message_is_taken_as_text(
    citizen_on_wechat: WeChatCitizen,
) -> None:
    assert "类别" in (await citizen_on_wechat.send("voice_recognized")).text  # “我要反映。”


async def test_a_voice_note_without_recognition_asks_kindly_for_words(
    citizen_on_wechat: WeChatCitizen,
) -> None:
    citizen = citizen_on_wechat
    at_menu = (await citizen.send("voice")).text
    assert "暂时听不了语音" in at_menu and "打字" in at_menu and "1 我要反映" in at_menu
    await citizen.say("我要反映")
    await citizen.say("4")
    await citizen.say("小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。")
    at_place = (await citizen.send("voice")).text
    assert "暂时听不了语音" in at_place and "地址" in at_place  # the same question again


async def test_a_shared_link_becomes_the_description(citizen_on_wechat: WeChatCitizen) -> None:
    reply = (await citizen_on_wechat.send("link")).text
    assert "已经记下" in reply  # free text at the menu starts a filing with it as the description


async def test_a_message_we_cannot_read_says_what_to_send(
    citizen_on_wechat: WeChatCitizen,
) -> None:
    card = citizen_on_wechat.message("text").replace("[text]", "[miniprogrampage]")
    assert "请发送文字、照片或位置" in (await citizen_on_wechat.deliver(card)).text


async def test_every_menu_key_opens_its_action(citizen_on_wechat: WeChatCitizen) -> None:
    expected = {
        "file": "类别",
        "status": "还没有",
        "rate": "没有需要评价",
        "suggest": "意见或建议",
        "faq": "常见问题",
        "staff": "工作人员",
        "no-such-key": "1 我要反映",  # an unknown key shows the menu
    }
    for key, words in expected.items():
        reply = (await citizen_on_wechat.send("event_click", EventKey=key)).text
        assert words in reply, (key, reply)


async def test_scan_tags_the_next_case_and_unsubscribe_stops_pushes(
    citizen_on_wechat: WeChatCitizen,
) -> None:
    citizen = citizen_on_wechat
    assert "1 我要反映" in (await citizen.send("event_scan")).text
    for text in ("1", "1", "物业不给修漏水的屋顶，已经三个月了", "幸福小区", "跳过", "李四"):
        await citizen.say(text)
    await citizen.say("13900139000")
    assert CODE.search(await citizen.say("1"))
    [case] = await rows(citizen, Case)
    assert case.source == "town-heping-office"
    goodbye = await citizen.send("event_unsubscribe")
    assert goodbye.status == 200 and goodbye.body == ""  # safe mode: an empty body, no reply
    [identity] = await rows(citizen, Identity)
    assert identity.unsubscribed_at is not None


async def test_pushes_that_need_no_reply_are_recorded(
    citizen_on_wechat: WeChatCitizen, fake_wechat: FakeWeChatApi
) -> None:
    citizen = citizen_on_wechat
    for name in ("event_view", "event_location", "event_templatesendjobfinish"):
        delivery = await citizen.send(name)
        assert (delivery.status, delivery.body) == (200, "")
    metrics = await (await citizen.client.get("/metrics")).text()
    for event in ("event:view", "event:location", "templatesendjobfinish"):
        assert f'minyi_channel_events_total{{channel="wechat",event="{event}"}} 1.0' in metrics
    assert await rows(citizen, Identity) == []  # the engine never saw them
    assert fake_wechat.calls == []


async def test_plaintext_and_compatible_mode(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    app = create_app(wechat_settings(sqlite_only, fake_wechat, "plain"), workers=False)
    plain = WeChatCitizen(await aiohttp_client(app), WeChatServer("plain"))
    reply = await plain.send("text")
    assert reply.body.startswith("<xml>") and "<Encrypt>" not in reply.body
    assert "1 我要反映" in reply.text
    assert (await plain.send("event_view")).body == "success"  # plaintext: `success`

    # The console switched to compatible mode before MINYI_WECHAT_AES_KEY was set: the
    # plaintext copy is read (no less safe than plaintext mode) and answered in plaintext.
    compatible = WeChatCitizen(plain.client, WeChatServer("compatible"), openid="oCompatible0001")
    reply = await compatible.send("text")
    assert reply.status == 200 and "<Encrypt>" not in reply.body
    assert "1 我要反映" in reply.text


async def test_compatible_mode_with_our_key_answers_encrypted(
    aiohttp_client: Any, sqlite_only: Settings, fake_wechat: FakeWeChatApi
) -> None:
    app = create_app(wechat_settings(sqlite_only, fake_wechat), workers=False)
    citizen = WeChatCitizen(await aiohttp_client(app), WeChatServer("compatible"))
    reply = await citizen.send("text")
    assert "<Encrypt>" in reply.body and "<Content>" not in reply.body
    assert "1 我要反映" in reply.text


async def test_a_long_reply_is_split_between_passive_reply_and_a_push(
    citizen_on_wechat: WeChatCitizen, fake_wechat: FakeWeChatApi
) -> None:
    citizen = citizen_on_wechat
    description = "楼上住户每天深夜装修，电钻声音很大。" * 110  # about 2000 characters
    for text in ("1", "1", description, "幸福小区3号楼", "跳过", "王五"):
        await citizen.say(text)
    summary = await citizen.say("13700137000")
    assert len(summary.encode()) <= 2048 and summary.startswith("请核对")
    await fake_wechat.wait_for(lambda: any("1 提交" in t for t in fake_wechat.texts_to(OPENID)))
    pushed = fake_wechat.texts_to(citizen.openid)
    assert all(len(p.encode()) <= 2048 for p in pushed)
    assert "1 提交" in pushed[-1]
    whole = "".join([summary, *pushed]).replace("\n", "")
    assert whole.count("电钻声音很大") == 110  # nothing lost, nothing cut inside a character


async def test_four_deliveries_of_each_message_make_one_case_over_two_processes(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    """WeChat re-sends a message up to three times; here all four arrive at once, spread over
    two app instances that share the database (and Redis), as two web processes would."""
    configured = wechat_settings(settings, fake_wechat)
    one = WeChatCitizen(await aiohttp_client(create_app(configured, workers=False)))
    two = WeChatCitizen(await aiohttp_client(create_app(configured, workers=False)))

    async def four_times(name: str, **fields: Any) -> str:
        xml = one.message(name, **fields)
        deliveries = await asyncio.gather(
            *(citizen.deliver(xml) for citizen in (one, two, one, two))
        )
        texts = {d.text for d in deliveries}
        assert len(texts) == 1 and all(d.status == 200 for d in deliveries), deliveries
        return texts.pop()

    await four_times("event_subscribe_qrscene")
    await four_times("text", Content="1")
    await four_times("text", Content="1")
    await four_times("text", Content="物业不给修漏水的屋顶，已经三个月了")
    assert "照片" in await four_times("location")
    assert "第1张" in await four_times("image")
    assert "第2张" in await four_times("image", MediaId="second-photo")  # each photo once
    await four_times("text", Content="完成")
    await four_times("text", Content="周八")
    await four_times("text", Content="13500135000")
    assert CODE.search(await four_times("text", Content="1"))
    assert len(await rows(one, Case)) == 1
    assert len(await rows(one, Attachment)) == 2
    assert fake_wechat.of("message/custom/send") == []


async def test_a_slow_turn_answers_success_and_pushes_exactly_once(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> None:
    configured = wechat_settings(settings, fake_wechat, "plain", wechat_reply_budget=0.5)
    client = await aiohttp_client(create_app(configured, workers=False))
    citizen = WeChatCitizen(client, WeChatServer("plain"))
    runtime = client.app[MINYI]
    # Created 6 s ago: WeChat's re-sends of it (same body) may still be arriving.
    xml = citizen.message("text", Content="1", CreateTime=int(time.time()) - 6)
    # The conversation is busy (another turn holds its lock): the engine cannot answer in time.
    async with runtime.store.lock(f"wechat:{citizen.openid}"):
        deliveries = await asyncio.gather(*(citizen.deliver(xml) for _ in range(4)))
        assert [d.body for d in deliveries] == ["success"] * 4
        assert fake_wechat.calls == []
    await fake_wechat.wait_for(lambda: len(fake_wechat.of("message/custom/send")) >= 1)
    late = await citizen.deliver(xml)  # a fifth delivery, after the push: it stays silent
    assert late.body == "success"
    await client.app[MINYI].channels["wechat"].close()  # let every background task finish
    [push] = fake_wechat.texts_to(citizen.openid)
    assert "类别" in push
    assert len(fake_wechat.of("stable_token")) == 1
    assert "事情经过" in await citizen.say("1")  # the turn ran once: now at the category step
