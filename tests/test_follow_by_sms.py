"""Following a case by SMS (issue 17): a text that is no survey reply is a conversation turn on
the `sms` channel, answered by SMS. The conversation on the in-memory engine, then the whole
path — the real webhook, the `sms-replies` job, the notifier, the gateway — on real backends."""

from __future__ import annotations

import itertools
import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi
from conversation.catalog import ZH
from conversation.messages import Choice, Reply
from conversation.sms_answer import SMS_MAX_CHARS, sms_answer
from storage.models import Base, Notification, SmsInbound, SmsReplyWaiting, Survey, utcnow

from .channels.sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app, http_push_headers
from .conftest import until_done
from .desk.conftest import csrf_of, seed_accounts, sign_in
from .memory_conversation import OnMemory
from .web_citizen import AUTH, WebCitizen

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")
MOBILE = "+8613800138000"


# -- the conversation on SMS ------------------------------------------------------------------


async def test_the_sms_menu_offers_only_following_and_says_where_to_file() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    menu = await sms.say("你好")
    assert "12345" in menu and "微信公众号" in menu
    assert "2 进度查询" in menu and "3 评价" in menu and "我要反映" not in menu
    for text in ("1", "4", "我要反映", "意见建议", "领导信箱"):
        answer = await sms.say(text)
        assert answer.startswith("短信暂不能登记新事项"), (text, answer)
    assert memory.store.cases.records == {}


async def test_a_matter_told_by_sms_is_not_filed_but_sent_where_to_file() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    answer = await sms.say("解放北路100号楼下的饭店天天半夜吵，睡不着觉")
    assert "短信暂不能登记新事项" in answer and "12345" in answer
    # Nothing half-filed waits: the next text starts afresh at the SMS menu.
    assert "已登记的事项" not in await sms.say("你好")
    assert memory.store.cases.records == {}


async def test_under_a_faq_answer_wanting_to_file_is_sent_where_to_file() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    answered = await sms.say("多久能有答复？")
    assert "这解决了您的问题吗" in answered
    assert "短信暂不能登记新事项" in await sms.say("2")
    assert memory.store.cases.records == {}


async def test_a_person_is_not_reached_by_sms_but_the_hotline_is_given() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    for text in ("人工", "0"):
        answer = await sms.say(text)
        assert answer.startswith("短信不能转人工") and "12345" in answer and "工作日" in answer
    assert memory.sent_types() == []


async def test_a_code_by_sms_from_a_stranger_asks_for_proof_and_the_query_code_opens_it() -> None:
    memory = OnMemory()
    web = memory.citizen("web-1")
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过"):
        await web.say(text)
    await web.say("匿名")
    receipt = await web.say("1")
    code, query = CODE.search(receipt), QUERY.search(receipt)
    assert code is not None and query is not None
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    assert "确认身份" in await sms.say(code.group())
    page = await sms.say(query.group(1))
    assert ZH["proof.passed"] in page and code.group() in page
    assert "已为您催办" in await sms.say("催办")


async def test_a_risk_word_by_sms_gives_the_emergency_numbers_and_pages_staff() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    answer = await sms.say("物业一直不管，我不想活了")
    assert ZH["risk.emergency"] in answer and "短信暂不能登记新事项" in answer
    assert memory.sent_types() == ["handoff.requested"]
    assert memory.store.cases.records == {}


async def test_a_typed_question_by_sms_is_answered() -> None:
    memory = OnMemory()
    sms = memory.citizen("hash-of-a-mobile", channel="sms")
    answer = await sms.say("信访需要带什么材料")
    assert "这解决了您的问题吗" in answer
    assert "2 进度查询" in await sms.say("1")  # solved: back at the SMS menu


def test_an_sms_answer_keeps_choices_on_one_line_and_cuts_long_text_before_them() -> None:
    choices = (Choice("1", "补充材料"), Choice("2", "催办"))
    short = sms_answer([Reply("事项 XF\n\n状态：已受理", choices)], "…")
    assert short == "事项 XF\n状态：已受理\n1 补充材料  2 催办"
    steps = "\n".join(
        f"11月{d}日 交办区住建局办理，答复：已安排维修人员到场查看" for d in range(1, 20)
    )
    long = sms_answer([Reply("事项 XF\n" + steps, choices)], "…（全文请在网页查看）")
    assert len(long) <= SMS_MAX_CHARS
    assert long.endswith("…（全文请在网页查看）\n1 补充材料  2 催办")
    assert long.startswith("事项 XF\n11月1日")


# -- the whole path ---------------------------------------------------------------------------

_ids = itertools.count()


@pytest.fixture
async def gateway(aiohttp_server: Any) -> tuple[FakeProvider, str]:
    fake = FakeProvider()
    server: TestServer = await aiohttp_server(http_gateway_app(fake))
    return fake, str(server.make_url("")).rstrip("/")


async def sms_client(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str], **more: Any
) -> TestClient:
    _, base = gateway
    return await aiohttp_client(
        create_app(
            settings.replace(
                sms_provider="http",
                sms_api_base=base,
                sms_webhook_secret=HTTP_SECRET,
                survey_quiet_hours="",
                **more,
            ),
            workers=False,
        )
    )


def runtime_of(client: TestClient) -> Minyi:
    return client.app[MINYI]  # type: ignore[no-any-return]


async def push(client: TestClient, text: str, message_id: str, phone: str = MOBILE) -> None:
    body = json.dumps({"from": phone, "text": text, "id": message_id}, ensure_ascii=False).encode()
    response = await client.post("/sms/http/inbound", data=body, headers=http_push_headers(body))
    assert response.status == 200, await response.text()


async def texts_back(client: TestClient, fake: FakeProvider) -> list[str]:
    """Work the SMS inbox and the notifier through; what the gateway was sent meanwhile."""
    before = len(fake.requests)
    await until_done(runtime_of(client).sms_inbox.work_once)
    await until_done(runtime_of(client).notifier.run_once)
    return [r.fields["text"] for r in fake.requests[before:]]


async def say(client: TestClient, fake: FakeProvider, text: str, phone: str = MOBILE) -> str:
    await push(client, text, f"m-{next(_ids)}", phone)
    return "\n".join(await texts_back(client, fake))


async def filed_on_the_web(client: TestClient, fake: FakeProvider) -> str:
    code = await WebCitizen(client).file_a_matter()
    await until_done(runtime_of(client).notifier.run_once)
    fake.requests.clear()
    return code


async def test_the_mobile_on_file_follows_its_case_and_a_redelivery_is_answered_once(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    client = await sms_client(aiohttp_client, settings, gateway)
    code = await filed_on_the_web(client, fake)
    await push(client, f"查询 {code}", "gw-1")
    await push(client, f"查询 {code}", "gw-1")  # the gateway pushed it again
    [page] = await texts_back(client, fake)
    assert code in page and "办理经过" in page and "确认身份" not in page
    await push(client, "催办", "gw-2")
    [urged] = await texts_back(client, fake)
    await push(client, "催办", "gw-2")  # hours later, once more: taken already
    assert await texts_back(client, fake) == []
    assert "已为您催办" in urged
    async with runtime_of(client).db.reading() as session:
        jobs = list(
            await session.scalars(select(Notification).where(Notification.topic == "sms_answer"))
        )
        taken = await session.scalar(select(func.count()).select_from(SmsInbound))
        waiting = await session.scalar(select(func.count()).select_from(SmsReplyWaiting))
    assert len(jobs) == 2 and all(j.status == "sent" for j in jobs) and taken == 2 and waiting == 0
    assert all(MOBILE not in str(j.payload) and "催办" not in str(j.payload) for j in jobs)


async def test_answers_to_one_mobile_are_capped_and_the_citizen_is_told_once(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    client = await sms_client(
        aiohttp_client, settings, gateway, rate_sms_answers=((2, 3600), (30, 86400))
    )
    code = await filed_on_the_web(client, fake)
    assert code in await say(client, fake, code)
    assert "进度查询" in await say(client, fake, "菜单")
    capped = await say(client, fake, "催办")
    assert "不再短信回复" in capped and "12345" in capped
    assert await say(client, fake, code) == ""  # told once; then nothing is sent
    # Over the cap nothing is done either: the 催办 was not taken.
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    assert "urged" not in [e["type"] for e in case["events"]]
    # Another mobile is counted on its own.
    assert "确认身份" in await say(client, fake, code, phone="+8613900139000")


async def test_a_survey_reply_is_still_a_survey_reply_first(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    client = await sms_client(aiohttp_client, settings, gateway)
    code = await filed_on_the_web(client, fake)
    for body in ({"type": "accepted"}, {"type": "replied", "note": "已修复。"}, {"type": "closed"}):
        response = await client.post(f"/api/v1/cases/{code}/events", json=body, headers=AUTH)
        assert response.status == 200
    await until_done(runtime_of(client).notifier.run_once)
    assert any("回复TD退订" in r.fields["text"] for r in fake.requests)
    # "1" answers the open survey (no conversation answer), as it always did.
    assert "菜单" not in await say(client, fake, "1")
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    assert case["rating"]["score"] == 1
    # Words right after the rating are its comment, as they always were.
    assert await say(client, fake, "修得很快，谢谢") == ""
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    assert "修得很快" in json.dumps(case, ensure_ascii=False)
    # Once no survey waits for anything, a code is a conversation turn, answered by SMS.
    async with runtime_of(client).db.session() as session, session.begin():
        await session.execute(update(Survey).values(comment_until=utcnow() - timedelta(seconds=1)))
    assert code in await say(client, fake, code)


async def test_without_an_sms_provider_nothing_is_texted_back(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings, workers=False))
    runtime = runtime_of(client)
    # The job that carries an answer is skipped with its reason, not pretended sent.
    async with runtime.units() as uow:
        await uow.notifications.add(
            "citizen:sms-answer:x", "citizen", "sms_answer", None, {"sender": "s", "sealed": ""}
        )
        await uow.commit()
    await until_done(runtime.notifier.run_once)
    async with runtime.db.reading() as session:
        job = await session.scalar(select(Notification))
    assert job is not None and job.status == "skipped" and "MINYI_SMS_PROVIDER" in job.last_error


async def test_the_mobile_on_file_lists_its_cases_without_a_code(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    client = await sms_client(aiohttp_client, settings, gateway)
    code = await filed_on_the_web(client, fake)
    assert code in await say(client, fake, "2")  # 进度查询: the cases of the mobile on file
    assert code not in await say(client, fake, "2", phone="+8613900139000")


# -- staff answer an SMS conversation by SMS ---------------------------------------------------


async def desk_act(client: TestClient, thread: int, do: str, text: str = "") -> None:
    page = await (await client.get(f"/desk/threads/{thread}")).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    form = {"csrf": csrf_of(page), "do": do, "text": text, "nonce": nonce.group(1) if nonce else ""}
    answer = await client.post(f"/desk/threads/{thread}", data=form)
    assert answer.status == 200, await answer.text()


async def test_staff_answer_an_sms_thread_by_sms_and_the_number_is_kept_only_encrypted(
    aiohttp_client: Any,
    settings: Settings,
    gateway: tuple[FakeProvider, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, _ = gateway
    client = await sms_client(aiohttp_client, settings, gateway)
    await seed_accounts(client)
    answer = await say(client, fake, "物业一直不管，我不想活了")
    assert ZH["risk.emergency"] in answer
    await until_done(runtime_of(client).notifier.run_once)  # the alert opens the thread
    assert (await sign_in(client, "intake")).status == 303
    found = re.findall(
        r'href="/desk/threads/(\d+)"', await (await client.get("/desk/inbox")).text()
    )
    assert found, "the risk words opened no thread"
    thread = int(found[0])

    before = len(fake.requests)
    await desk_act(client, thread, "claim")
    await desk_act(client, thread, "send", "您好，我是值班的小刘，您现在安全吗？")
    await until_done(runtime_of(client).notifier.run_once)
    sent = fake.requests[before:]
    assert [r.fields["to"] for r in sent] == [MOBILE, MOBILE]
    assert "工作人员前台小刘已接手" in sent[0].fields["text"]
    assert "工作人员前台小刘：您好，我是值班的小刘，您现在安全吗？" in sent[1].fields["text"]
    async with runtime_of(client).db.reading() as session:
        jobs = list(
            await session.scalars(
                select(Notification).where(Notification.topic.in_(("staff.joined", "staff.says")))
            )
        )
    assert len(jobs) == 2 and all(j.status == "sent" and j.done_routes == ["sms"] for j in jobs)

    # The citizen's next texts go to the staff member, not the bot, as on every channel.
    assert await say(client, fake, "我在家，楼下一直很吵睡不着") == ""
    messages = await (await client.get(f"/desk/threads/{thread}?part=messages")).text()
    assert "我在家，楼下一直很吵睡不着" in messages

    await desk_act(client, thread, "end")
    await until_done(runtime_of(client).notifier.run_once)
    assert fake.requests[-1].fields["to"] == MOBILE
    left = fake.requests[-1].fields["text"]
    assert "工作人员已结束本次对话" in left and "12345" in left and "人工" not in left
    assert "进度查询" in await say(client, fake, "菜单")  # the bot answers again

    # The number is nowhere in the clear: not in any table, not in the logs.
    digits = MOBILE[3:]
    async with runtime_of(client).db.reading() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                assert digits not in repr(row), table.name
    assert digits not in caplog.text
