"""POST /telegram through the whole app against a local fake Bot API, on every backend."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from channels.base import RecipientUnreachable
from channels.telegram.webhook import SECRET_HEADER
from conversation.catalog import EN, ZH
from conversation.messages import Choice, Reply
from storage.models import Attachment, Case, Identity

from ...conftest import TRACE_TABLES, until_done
from .conftest import VirtualTime, app_client, telegram_of
from .fake_telegram import SECRET, TOKEN, FakeBotApi, TelegramUser

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


@pytest.fixture
def user() -> TelegramUser:
    return TelegramUser()


async def post(
    client: TestClient, update: dict[str, Any], secret: str | None = SECRET, status: int = 200
) -> None:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    response = await client.post("/telegram", json=update, headers=headers)
    assert response.status == status, await response.text()


async def row_counts(client: TestClient) -> dict[str, int]:
    counts = {}
    async with client.app[MINYI].db.session() as session:
        for table in TRACE_TABLES.split(", "):
            counts[table] = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
    return counts


async def test_a_complete_filing_with_buttons_a_photo_and_a_location(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    chat = user.chat_id
    await post(client, user.update("start_deep_link"))  # t.me/<bot>?start=town-7
    greeting, buttons = fake_api.keyboard(chat)
    assert "您好" in fake_api.texts(chat)[-1]
    assert buttons[0] == ("1 我要反映", "1") and ("0 人工服务", "0") in buttons

    press = user.press("1", greeting)
    await post(client, press)
    answered = fake_api.called("answerCallbackQuery")
    assert [c.params["callback_query_id"] for c in answered] == [press["callback_query"]["id"]]
    categories, buttons = fake_api.keyboard(chat)
    assert buttons[0] == ("1 住房与物业", "1")

    await post(client, user.press("1", categories))
    assert "事情经过" in fake_api.texts(chat)[-1]
    await post(client, user.text("小区电梯坏了两个星期，老人上下楼很困难，物业一直不修。"))
    assert "在哪里" in fake_api.texts(chat)[-1]
    await post(client, user.update("location"))
    assert "照片" in fake_api.texts(chat)[-1]
    await post(client, user.update("photo"))
    assert "第1张" in fake_api.texts(chat)[-1]
    await post(client, user.text("完成"))
    await post(client, user.text("张三"))
    await post(client, user.text("13800138000"))
    confirm, buttons = fake_api.keyboard(chat)
    assert ("1 提交", "1") in buttons
    await post(client, user.press("1", confirm))

    code = CODE.search(fake_api.texts(chat)[-1])
    assert code is not None
    async with client.app[MINYI].db.session() as session:
        case = (await session.scalars(select(Case))).one()
        attachments = (await session.scalars(select(Attachment))).all()
    assert (case.code, case.channel, case.category, case.source) == (
        code.group(),
        "telegram",
        "housing",
        "town-7",
    )
    assert (case.lat, case.lng) == (22.543096, 114.057865)
    assert [(a.kind, a.channel, a.ref, a.url) for a in attachments] == [
        ("image", "telegram", "AgACAgUAAxkBAAIBb2dAlarge1280", "")  # the largest size, no URL
    ]
    assert len(fake_api.called("answerCallbackQuery")) == 3
    assert all("parse_mode" not in params for params in fake_api.sent())  # plain text only


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_secret"),
        ({SECRET_HEADER: "wrong"}, "wrong_secret"),
        ({SECRET_HEADER: SECRET + "x"}, "wrong_secret"),
        ({SECRET_HEADER: SECRET[:-1]}, "wrong_secret"),
        ({SECRET_HEADER: ""}, "wrong_secret"),
        ({SECRET_HEADER: "cl\u00e9-" + SECRET}, "wrong_secret"),
    ],
)
async def test_a_wrong_or_missing_secret_is_refused_and_leaves_no_trace(
    client: TestClient,
    fake_api: FakeBotApi,
    user: TelegramUser,
    headers: dict[str, str],
    reason: str,
) -> None:
    before = len(fake_api.calls)
    response = await client.post("/telegram", json=user.text("/start"), headers=headers)
    assert response.status == 403
    body = await response.json()
    assert body["error"] == "forbidden" and SECRET_HEADER in body["message"]
    assert set((await row_counts(client)).values()) == {0}
    runtime = client.app[MINYI]
    if runtime.redis is not None:
        assert [k async for k in runtime.redis.scan_iter(match=runtime.keys.prefix + "*")] == []
    assert len(fake_api.calls) == before  # nothing was sent either
    metrics = await (await client.get("/metrics")).text()
    assert f'minyi_webhook_rejected_total{{channel="telegram",reason="{reason}"}} 1.0' in metrics


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "bad_json"),
        (b"[1, 2]", 400, "bad_json"),
        (b'{"message": {"text": "hi"}}', 400, "bad_update"),
        (b'{"update_id": "7"}', 400, "bad_update"),
        (
            b'{"update_id": 7, "message": {"message_id": 1, "date": 1, "text": "x"}}',
            400,
            "bad_update",
        ),
        (b'{"update_id": 7, "message": "hello"}', 400, "bad_update"),
        (b'{"update_id": 7, "padding": "' + b"x" * 300_000 + b'"}', 413, "too_large"),
    ],
)
async def test_bad_bodies_get_a_sentence_and_the_server_keeps_serving(
    client: TestClient, body: bytes, status: int, error: str
) -> None:
    response = await client.post(
        "/telegram",
        data=body,
        headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
    )
    assert response.status == status
    answer = await response.json()
    assert answer["error"] == error and answer["message"].endswith(".")
    assert set((await row_counts(client)).values()) == {0}
    assert (await client.get("/healthz")).status == 200


async def test_a_duplicate_update_is_one_step_and_answered_once(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    await post(client, user.text("/start"))
    choose_filing = user.text("1")
    await post(client, choose_filing)
    sent = fake_api.texts()
    await post(client, choose_filing)  # Telegram delivers it again
    assert fake_api.texts() == sent
    await post(client, user.text("2"))  # one step was taken: "2" picks the second category
    assert "事情经过" in fake_api.texts()[-1]


async def test_two_processes_take_one_step_and_answer_once(
    aiohttp_client: Any,
    telegram_settings: Settings,
    fake_api: FakeBotApi,
    virtual_time: VirtualTime,
    user: TelegramUser,
) -> None:
    one = await app_client(aiohttp_client, telegram_settings, virtual_time)
    two = await app_client(aiohttp_client, telegram_settings, virtual_time)
    await post(one, user.text("/start"))
    choose_filing = user.text("1")
    if telegram_settings.is_embedded_database:
        # The embedded SQLite default is one process: its locks are in-process, so the second
        # delivery comes after the first (as Telegram's re-delivery does).
        await post(one, choose_filing)
        await post(two, choose_filing)
    else:
        await asyncio.gather(post(one, choose_filing), post(two, choose_filing))
    texts = fake_api.texts()
    assert sum("类别" in t for t in texts) == 1
    await post(two, user.text("2"))
    assert "事情经过" in fake_api.texts()[-1]


async def test_an_update_that_failed_is_finished_on_redelivery_without_repeats(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    await post(client, user.text("/start"))
    before = len(fake_api.texts())
    fake_api.fail("sendMessage", 502, "Bad Gateway", after=1)  # the turn's second message fails
    choose_filing = user.text("1")
    await post(client, choose_filing, status=503)
    first_try = fake_api.texts()[before:]
    assert len(first_try) == 1
    await post(client, choose_filing)  # Telegram re-delivers after our 503
    delivered = fake_api.texts()[before:]
    assert delivered[0] == first_try[0] and len(delivered) == 2 and "类别" in delivered[1]


async def test_a_failing_turn_answers_503_so_telegram_sends_it_again(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = client.app[MINYI].engine

    async def broken(inbound: Any) -> Any:
        raise ConnectionError("database went away")

    start = user.text("/start")
    monkeypatch.setattr(engine, "handle", broken)
    response = await client.post("/telegram", json=start, headers={SECRET_HEADER: SECRET})
    assert response.status == 503 and (await response.json())["error"] == "unavailable"
    monkeypatch.undo()
    await post(client, start)
    assert "您好" in fake_api.texts()[-1]


async def test_flood_control_then_success_waits_as_told(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser, virtual_time: VirtualTime
) -> None:
    fake_api.too_many_requests(retry_after=3)
    await post(client, user.text("/start"))
    calls = fake_api.called("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[0].params == calls[1].params
    assert virtual_time.slept == [3.0]


async def test_a_blocked_bot_makes_the_citizen_unreachable(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    telegram = telegram_of(client)
    fake_api.blocked()
    with pytest.raises(RecipientUnreachable):
        await telegram.send(str(user.chat_id), [Reply("您的事项已受理。")])
    fake_api.blocked()
    await post(client, user.text("/start"))  # 200: a re-delivery could not help
    with pytest.raises(RecipientUnreachable):
        await telegram.send("not-a-chat", [Reply("x")])


async def test_the_notifier_can_send_long_texts_and_choices(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    long = "处理结果：" + "已派人现场查看并修复。" * 500
    message_id = await telegram_of(client).send(
        str(user.chat_id), [Reply(long, (Choice("1", "满意"), Choice("2", "不满意")))]
    )
    sent = fake_api.sent(user.chat_id)
    assert message_id == str(fake_api.called("sendMessage")[-1].result["message_id"])
    assert len(sent) == 2 and "".join(p["text"] for p in sent) == long
    assert "reply_markup" not in sent[0]
    assert sent[1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "1"


async def test_english_for_an_english_telegram_user(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    user = TelegramUser(chat_id=2222, language="en")
    await post(client, user.text("/start"))
    assert fake_api.texts(2222)[-1].startswith("Hello!")
    _, buttons = fake_api.keyboard(2222)
    assert buttons[0] == ("1 Report a matter", "1")


async def test_a_button_of_an_earlier_question_is_answered_but_not_taken(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    chat = user.chat_id
    await post(client, user.text("/start"))
    menu, _ = fake_api.keyboard(chat)
    await post(client, user.press("1", menu))
    categories, _ = fake_api.keyboard(chat)
    sent = len(fake_api.texts())
    await post(client, user.press("2", menu))  # the old menu's "2" must not pick a category
    assert len(fake_api.texts()) == sent
    assert len(fake_api.called("answerCallbackQuery")) == 2
    [retired] = fake_api.called("editMessageReplyMarkup")
    assert int(retired.params["message_id"]) == menu and "reply_markup" not in retired.params
    await post(client, user.press("2", categories))
    assert "事情经过" in fake_api.texts()[-1]
    await post(client, user.text("公司拖欠三个月工资不发，找老板也不理"))
    await post(client, user.press("1", categories))  # the question now asked has no buttons
    assert len(fake_api.called("editMessageReplyMarkup")) == 2


async def test_stickers_are_told_what_to_send_and_edits_and_groups_are_left_alone(
    client: TestClient, fake_api: FakeBotApi
) -> None:
    chinese, english = TelegramUser(chat_id=31), TelegramUser(chat_id=32, language="en")
    await post(client, chinese.update("sticker"))
    await post(client, english.update("sticker"))
    assert fake_api.texts(31) == [ZH["unsupported"]]
    assert fake_api.texts(32) == [EN["unsupported"]]
    before = len(fake_api.calls)
    for payload in ("edited_message", "group_text", "pinned_service"):
        await post(client, chinese.update(payload))
    assert len(fake_api.calls) == before


@pytest.mark.parametrize(
    ("api_base", "logged"),
    [
        ("http://127.0.0.1:9", "Telegram is not reachable at start-up"),  # nothing listens
        (None, "MINYI_TELEGRAM_TOKEN was refused by Telegram"),  # the fake knows another token
    ],
)
async def test_a_telegram_outage_at_start_up_leaves_the_other_channels_serving(
    aiohttp_client: Any,
    sqlite_only: Settings,
    fake_api: FakeBotApi,
    caplog: pytest.LogCaptureFixture,
    api_base: str | None,
    logged: str,
) -> None:
    token = "42:another-bot-token" if api_base is None else TOKEN
    settings = sqlite_only.replace(
        telegram_token=token, telegram_secret=SECRET, telegram_api_base=api_base or fake_api.base
    )
    client = await aiohttp_client(create_app(settings, workers=False))
    response = await client.post("/webchat/messages", json={"event": "start"})
    assert response.status == 200 and "您好" in (await response.json())["replies"][0]["text"]
    assert logged in caplog.text and token not in caplog.text


async def test_menu_and_cancel_commands_work_mid_form(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    await post(client, user.text("/start"))
    await post(client, user.text("1"))
    await post(client, user.text("/cancel@minyi_test_bot"))
    assert fake_api.texts()[-1].startswith(ZH["cancelled"])
    await post(client, user.text("/menu"))
    assert ZH["menu"] in fake_api.texts()[-1]
    _, buttons = fake_api.keyboard(user.chat_id)
    assert buttons[0] == ("1 我要反映", "1")


async def file_through_the_webhook(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> str:
    for step in ("/start", "1", "1", "小区电梯坏了两个星期，老人上下楼很困难。", "幸福小区3号楼"):
        await post(client, user.text(step))
    for step in ("跳过", "张三", "13800138000", "1"):
        await post(client, user.text(step))
    code = CODE.search(fake_api.texts(user.chat_id)[-1])
    assert code is not None
    return code.group()


async def test_the_notifier_tells_the_citizen_on_telegram_or_marks_a_blocked_chat(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    runtime = client.app[MINYI]
    auth = {"Authorization": "Bearer test-token"}
    code = await file_through_the_webhook(client, fake_api, user)
    response = await client.post(
        f"/api/v1/cases/{code}/events", json={"type": "accepted"}, headers=auth
    )
    assert response.status == 200, await response.text()
    notifier = runtime.notifier
    await until_done(notifier.run_once)
    assert code in fake_api.texts(user.chat_id)[-1] and "已受理" in fake_api.texts()[-1]

    other = TelegramUser(chat_id=3333)
    second = await file_through_the_webhook(client, fake_api, other)
    fake_api.blocked()
    await client.post(f"/api/v1/cases/{second}/events", json={"type": "accepted"}, headers=auth)
    await until_done(notifier.run_once)
    async with runtime.db.session() as session:
        identity = (
            await session.scalars(select(Identity).where(Identity.external_id == "3333"))
        ).one()
    assert identity.unreachable_at is not None  # the next notice skips Telegram


async def test_long_and_many_notices_stay_within_telegrams_limits(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    """A 5,000-character answer and a run of notices to one chat: Telegram refuses texts over
    4,096 characters and floods (the fake does, on its own); every notice must still arrive."""
    runtime = client.app[MINYI]
    auth = {"Authorization": "Bearer test-token"}
    code = await file_through_the_webhook(client, fake_api, user)
    answer = "经调查核实，" + "该路段的路灯已由区城管局于本周更换并恢复照明。" * 200
    assert 4096 < len(answer) <= 5000
    for body in (
        {"type": "accepted"},
        {"type": "extended", "reason": "需要会商", "days": 10},
        {"type": "replied", "note": answer},
        {"type": "closed"},
    ):
        response = await client.post(f"/api/v1/cases/{code}/events", json=body, headers=auth)
        assert response.status == 200, await response.text()
    await until_done(runtime.notifier.run_once)
    refused = [c for c in fake_api.called("sendMessage") if c.status != 200]
    assert refused == []
    texts = fake_api.texts(user.chat_id)
    assert "".join(texts).count("恢复照明") == 200
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    case = await (await client.get(f"/api/v1/cases/{code}", headers=auth)).json()
    sent = [e for e in case["events"] if e["type"] == "notification.sent"]
    assert len(sent) == 5  # accepted, extended, replied, closed and the survey
