"""Satisfaction surveys end to end: closing a case asks in the chat and by SMS; replies land once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi, open_minyi
from conversation.cases.progress import Progress
from conversation.cases.surveys import SurveyRules
from conversation.codes import short_reference
from storage.conversations import RedisConversationStore
from storage.lifecycle import record_progress
from storage.models import Citizen as CitizenRow
from storage.models import Notification, OutboxEntry, Survey, utcnow
from storage.surveys import expire_surveys
from storage.uow import UnitOfWork

from .channels.sms_fakes import HTTP_SECRET, FakeProvider, http_gateway_app, http_push_headers
from .conftest import Citizen, settings_for, until_done
from .web_citizen import web_sender, with_cookie

AUTH = {"Authorization": "Bearer test-token"}
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def gateway(aiohttp_server: Any) -> tuple[FakeProvider, str]:
    fake = FakeProvider()
    server: TestServer = await aiohttp_server(http_gateway_app(fake))
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, gateway: tuple[FakeProvider, str]
) -> TestClient:
    _, base = gateway
    sms = settings.replace(
        sms_provider="http",
        sms_api_base=base,
        sms_webhook_secret=HTTP_SECRET,
        survey_quiet_hours="",
    )
    return await aiohttp_client(create_app(sms, workers=False))


def runtime_of(client: TestClient) -> Minyi:
    return client.server.app[MINYI]


async def closed_case(client: TestClient, sender: str = "", phone: str = "13800138000") -> str:
    citizen = Citizen(runtime_of(client), sender=sender or web_sender(runtime_of(client)))
    for text in (
        "1",
        "4",
        "小区门口的路灯坏了一个多月，晚上很黑。",
        "幸福路",
        "跳过",
        "张三",
        phone,
    ):
        await citizen.say(text)
    code = (await citizen.say("1")).split("编号是 ")[1].split("，")[0]
    for body in (
        {"type": "accepted"},
        {"type": "replied", "note": "路灯已修复。"},
        {"type": "closed"},
    ):
        response = await client.post(f"/api/v1/cases/{code}/events", json=body, headers=AUTH)
        assert response.status == 200, await response.text()
    return code


async def drain(client: TestClient) -> None:
    notifier = runtime_of(client).notifier
    await until_done(notifier.run_once)


async def sms_reply(
    client: TestClient, text: str, message_id: str, phone: str = "+8613800138000"
) -> int:
    body = json.dumps({"from": phone, "text": text, "id": message_id}, ensure_ascii=False).encode()
    response = await client.post("/sms/http/inbound", data=body, headers=http_push_headers(body))
    # Acknowledged once kept; the `sms-replies` job then works it through (here, at once).
    assert await runtime_of(client).sms_inbox.waiting() == (1 if response.status == 200 else 0)
    await until_done(runtime_of(client).sms_inbox.work_once)
    return response.status


async def case_json(client: TestClient, code: str) -> dict[str, Any]:
    return await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()


async def outbox_count(client: TestClient, kind: str) -> int:
    async with runtime_of(client).db.session() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.type == kind)
            )
            or 0
        )


def texts(fake: FakeProvider) -> list[str]:
    return [r.fields["text"] for r in fake.requests]


async def test_closing_asks_in_the_chat_and_the_chat_answer_counts_once(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    code = await closed_case(client)
    await drain(client)
    pending = await (await client.get("/webchat/messages", **with_cookie())).json()
    invitation = pending["replies"][-1]
    assert code in invitation["text"] and [c["label"] for c in invitation["choices"]] == [
        "满意",
        "基本满意",
        "不满意",
    ]
    sms = texts(fake)
    assert (
        len(sms) == 1
        and short_reference(code) in sms[0]
        and "回复TD退订" in sms[0]
        and len(sms[0]) <= 70
    )
    citizen = Citizen(runtime_of(client), sender=web_sender(runtime_of(client)))
    assert "还有什么想说" in await citizen.say(
        "1"
    )  # the invitation's "1" is 满意, not "file a matter"
    assert "评价已记录" in await citizen.say("路灯修得很快")
    case = await case_json(client, code)
    assert (
        case["status"] == "rated"
        and case["rating"]["label"] == "满意"
        and case["rating"]["channel"] == "webchat"
    )
    assert case["rating"]["comment"] == "路灯修得很快"
    assert (
        await sms_reply(client, "3", "late-sms") == 200
    )  # the SMS answer comes too late: nothing changes
    assert (await case_json(client, code))["rating"]["score"] == 1
    assert await outbox_count(client, "case.rated") == 1


async def test_an_sms_rating_lands_once_however_often_it_is_delivered(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    code = await closed_case(client)
    await drain(client)
    ref = short_reference(code)
    for _ in range(3):  # the gateway re-delivers
        assert await sms_reply(client, f"2 {ref} 态度很好", "gw-1") == 200
    case = await case_json(client, code)
    assert case["rating"]["label"] == "基本满意" and case["rating"]["channel"] == "sms"
    assert case["rating"]["comment"] == "态度很好"
    assert await outbox_count(client, "case.rated") == 1
    assert [e["type"] for e in case["events"]].count("rated") == 1


async def test_the_unhappy_path_reaches_a_review_and_staff_hear_of_it(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    code = await closed_case(client)
    await drain(client)
    assert await sms_reply(client, "不满意", "u-1") == 200
    await drain(client)
    assert "回复“复查”" in texts(fake)[-1]
    assert (
        await sms_reply(client, "灯修好两天又坏了", "u-2") == 200
    )  # the reason becomes the comment
    assert await sms_reply(client, "复查", "u-3") == 200
    await drain(client)
    case = await case_json(client, code)
    assert case["status"] == "review_requested" and case["rating"]["comment"] == "灯修好两天又坏了"
    assert case["deadlines"]["next"]["kind"] == "review_decision"
    assert "已为您登记复查申请" in texts(fake)[-1]
    assert await outbox_count(client, "case.review_requested") == 1
    async with runtime_of(client).db.session() as session:
        topics = list(
            await session.scalars(
                select(Notification.topic).where(Notification.audience == "staff")
            )
        )
    assert "unhappy" in topics and "review" in topics
    # Reopened, answered and closed again: a new survey.
    for body in (
        {"type": "accepted"},
        {"type": "replied", "note": "已更换灯具"},
        {"type": "closed"},
    ):
        await client.post(f"/api/v1/cases/{code}/events", json=body, headers=AUTH)
    async with runtime_of(client).db.session() as session:
        statuses = list(await session.scalars(select(Survey.status).order_by(Survey.id)))
    assert statuses == ["answered", "open"]


async def test_the_chat_offers_a_review_after_an_unhappy_rating(client: TestClient) -> None:
    code = await closed_case(client)
    await drain(client)
    citizen = Citizen(runtime_of(client), sender=web_sender(runtime_of(client)))
    assert "哪里不满意" in await citizen.say("3")
    offer = await citizen.say("跳过")
    assert "申请复查" in offer and "1 申请复查" in offer
    assert "已为您登记复查申请" in await citizen.say("1")
    assert (await case_json(client, code))["status"] == "review_requested"


async def test_two_open_surveys_on_one_phone_ask_which_and_never_guess(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    first = await closed_case(client, sender="A" * 24)
    second = await closed_case(client, sender="B" * 24)
    await drain(client)
    sent_before = len(fake.requests)
    assert await sms_reply(client, "1", "w-1") == 200
    await drain(client)
    which = texts(fake)[-1]
    assert len(fake.requests) == sent_before + 1
    assert short_reference(first) in which and short_reference(second) in which
    assert (await case_json(client, first))["rating"] is None and (await case_json(client, second))[
        "rating"
    ] is None
    assert await sms_reply(client, f"{short_reference(second)} 1", "w-2") == 200
    assert (await case_json(client, second))["rating"]["label"] == "满意"
    assert (await case_json(client, first))["rating"] is None


async def test_a_reference_that_matches_no_open_survey_rates_nothing(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    """One survey open (B), one answered (A): "2 <A's ref>" must not fall back to B."""
    fake, _ = gateway
    answered = await closed_case(client, sender="A" * 24)
    await drain(client)
    assert await sms_reply(client, f"1 {short_reference(answered)}", "r-1") == 200
    still_open = await closed_case(client, sender="B" * 24)
    await drain(client)
    for n, ref in enumerate((short_reference(answered), "ZZZZ")):
        sent_before = len(fake.requests)
        assert await sms_reply(client, f"2 {ref}", f"r-{n + 2}") == 200
        await drain(client)
        assert (await case_json(client, still_open))["rating"] is None, ref
        assert (await case_json(client, answered))["rating"]["label"] == "满意", ref
        if n == 0:  # asked once which matter is meant, naming the one still open
            asked = texts(fake)[sent_before:]
            assert len(asked) == 1 and short_reference(still_open) in asked[0], asked
    assert await outbox_count(client, "case.rated") == 1


async def test_an_unclear_reply_gets_one_clarification_only(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    code = await closed_case(client)
    await drain(client)
    for n in range(3):
        assert await sms_reply(client, "你们是谁？", f"c-{n}") == 200
        await drain(client)
    clarifications = [t for t in texts(fake) if "没看懂" in t]
    assert len(clarifications) == 1 and short_reference(code) in clarifications[0]


async def test_opt_out_means_no_sms_ever_again(
    client: TestClient, gateway: tuple[FakeProvider, str]
) -> None:
    fake, _ = gateway
    code = await closed_case(client)
    await drain(client)
    assert await sms_reply(client, "TD", "td-1") == 200
    async with runtime_of(client).db.session() as session:
        citizen = (await session.scalars(select(CitizenRow))).one()
    assert citizen.sms_opted_out_at is not None
    sent = len(fake.requests)
    await sms_reply(client, "好的", "td-2")  # would have been clarified
    second = await closed_case(client, sender="Q" * 24)  # same phone, another case
    await drain(client)
    assert len(fake.requests) == sent
    events = [e["type"] for e in (await case_json(client, second))["events"]]
    assert "notification.skipped" in events
    assert "sms.opted_out" in [e["type"] for e in (await case_json(client, code))["events"]]


async def test_quiet_hours_hold_the_survey_sms_until_morning(
    aiohttp_client: Any, sqlite_only: Settings, gateway: tuple[FakeProvider, str]
) -> None:
    rules = SurveyRules()  # 21:00-08:00
    late = datetime(2026, 11, 23, 22, 30, tzinfo=SHANGHAI)
    assert rules.quiet_end(late, SHANGHAI) == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    assert rules.quiet_end(datetime(2026, 11, 24, 7, 59, tzinfo=SHANGHAI), SHANGHAI) == datetime(
        2026, 11, 24, 8, 0, tzinfo=SHANGHAI
    )
    assert rules.quiet_end(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI), SHANGHAI) is None

    fake, base = gateway
    now = datetime.now(SHANGHAI)
    quiet_now = f"{now:%H:%M}-{now + timedelta(hours=1):%H:%M}"  # quiet from this minute on
    settings = sqlite_only.replace(
        sms_provider="http",
        sms_api_base=base,
        sms_webhook_secret=HTTP_SECRET,
        survey_quiet_hours=quiet_now,
    )
    client = await aiohttp_client(create_app(settings, workers=False))
    await closed_case(client)
    runtime = runtime_of(client)
    await drain(client)
    assert texts(fake) == []  # held
    async with runtime.db.session() as session:
        job = (
            await session.scalars(select(Notification).where(Notification.topic == "survey_sms"))
        ).one()
    assert (
        job.status == "pending"
        and job.attempts == 0
        and job.next_attempt_at > utcnow() + timedelta(minutes=50)
    )
    # The same office without quiet hours (a restart with the setting changed): it goes out.
    awake = await aiohttp_client(create_app(settings.replace(survey_quiet_hours=""), workers=False))
    async with runtime.db.session() as session, session.begin():
        await session.execute(update(Notification).values(next_attempt_at=utcnow()))
    await drain(awake)
    assert len(texts(fake)) == 1


async def test_unanswered_surveys_expire(client: TestClient) -> None:
    code = await closed_case(client)
    runtime = runtime_of(client)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        assert await expire_surveys(uow, now=utcnow() + timedelta(days=6)) == 0
        assert await expire_surveys(uow, now=utcnow() + timedelta(days=8)) == 1
        await uow.commit()
    assert "survey.expired" in [e["type"] for e in (await case_json(client, code))["events"]]
    assert await sms_reply(client, "1", "after-expiry") == 200
    assert (await case_json(client, code))["rating"] is None


def test_survey_rules_from_the_setting() -> None:
    rules = SurveyRules.from_setting(5, 10, "22:00-07:30")
    assert (rules.scale, rules.days) == (5, 10)
    noon = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
    assert rules.quiet_end(noon, SHANGHAI) is None
    assert SurveyRules.from_setting(3, 7, "").quiet_end(noon, SHANGHAI) is None


@pytest.fixture
def redis_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    return settings_for(request, "postgres+redis", tmp_path)


async def test_a_survey_asked_while_the_conversation_cannot_be_locked_is_not_asked_again(
    redis_settings: Settings,
) -> None:
    """Found by the soak: during a Redis outage the chat question went out, readying the
    conversation for the answer failed, and the job stayed leased — to be asked again."""
    sender = "R" * 24
    async with open_minyi(redis_settings) as runtime:
        code = (await Citizen(runtime, sender=sender).file_a_matter()).split("编号是 ")[1][:17]
        for step in (
            Progress("accepted"),
            Progress("replied", note="已修复。"),
            Progress("closed"),
        ):
            async with UnitOfWork(runtime.db, runtime.cipher) as uow:
                case = await uow.cases.by_code(code, for_update=True)
                assert case is not None
                await record_progress(uow, case, step, runtime.deadlines, utcnow(), runtime.surveys)
                await uow.commit()
        # Another turn holds the conversation, and this one gives up on it at once.
        assert isinstance(runtime.store, RedisConversationStore)
        runtime.store.lock_wait = 0.0
        held, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with runtime.store.lock(f"webchat:{sender}"):
                held.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await held.wait()
        notifier = runtime.notifier
        try:
            await until_done(notifier.run_once)
        finally:
            release.set()
            await holder
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(code)
            assert case is not None
            asked = [
                e
                for e in await uow.events.events(case)
                if e.type == "notification.sent" and e.data.get("topic") == "survey"
            ]
            job = (
                await uow.session.execute(
                    select(Notification.status, Notification.leased_until).where(
                        Notification.topic == "survey"
                    )
                )
            ).one()
        # Asked once, and recorded: nothing held back under a lease to be asked a second time.
        assert len(asked) == 1 and tuple(job) == ("sent", None)
