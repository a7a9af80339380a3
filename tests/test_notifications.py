"""The notifier against local fakes: staff targets, the citizen's fallback chain, the mailbox."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.citizen_notices import NotSent
from bot.backoffice.delivery_reports import DeliveryReports
from channels.base import (
    DeliveryFailed,
    DeliveryReport,
    Notice,
    Recipient,
    RecipientUnreachable,
    Route,
    Services,
)
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from conversation.cases.progress import Progress
from conversation.messages import Inbound, Reply
from storage import ratings
from storage.lifecycle import record_progress
from storage.models import Identity, Notification, utcnow
from storage.uow import UnitOfWork

from .channels.telegram_channel.conftest import VirtualTime
from .channels.telegram_channel.fake_telegram import SECRET, TOKEN, FakeBotApi
from .conftest import Citizen, connection_cut_once, reach_by_send, until_done
from .web_citizen import web_sender, with_cookie

HOOK_SECRET = "hook-secret"
STAFF_CHAT = "-1001234"


WECOM_PER_MINUTE = 20  # reference/protocols.md §2: "每个机器人发送的消息不能超过20条/分钟"


@dataclass
class FakeStaffEndpoints:
    """The Bot API (the duty group), a WeCom robot and a webhook receiver, recording what arrives.

    The robot keeps WeCom's rule on its own: past 20 messages in a minute it still answers ok,
    and the message never reaches the group (`wecom_dropped`), so only pacing can save it."""

    bot: FakeBotApi = field(default_factory=FakeBotApi)
    wecom: list[dict[str, Any]] = field(default_factory=list)
    wecom_dropped: list[dict[str, Any]] = field(default_factory=list)
    wecom_at: list[float] = field(default_factory=list)
    webhook: list[tuple[bytes, str]] = field(default_factory=list)
    webhook_status: int = 200

    @property
    def telegram(self) -> list[dict[str, Any]]:
        return self.bot.sent(int(STAFF_CHAT))

    def app(self) -> web.Application:
        app = self.bot.app()
        app.router.add_post("/cgi-bin/webhook/send", self.robot)
        app.router.add_post("/hook", self.hook)
        return app

    async def robot(self, request: web.Request) -> web.Response:
        if request.query.get("key") != "robot-key":
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        now = time.monotonic()
        recent = [at for at in self.wecom_at if at > now - 60]
        message = await request.json()
        if len(recent) >= WECOM_PER_MINUTE:
            self.wecom_dropped.append(message)
        else:
            self.wecom.append(message)
            self.wecom_at.append(now)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.webhook.append((body, request.headers["X-Minyi-Signature"]))
        return web.json_response({}, status=self.webhook_status)


@pytest.fixture
async def endpoints(aiohttp_server: Any) -> tuple[FakeStaffEndpoints, str]:
    fake = FakeStaffEndpoints()
    server: TestServer = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def with_staff(settings: Settings, base: str) -> Settings:
    return settings.replace(
        telegram_token=TOKEN,
        telegram_secret=SECRET,
        telegram_api_base=base,
        staff_telegram_chat=STAFF_CHAT,
        staff_wecom_key="robot-key",
        staff_wecom_api_base=base,
        staff_webhook_url=f"{base}/hook",
        staff_webhook_secret=HOOK_SECRET,
    )


async def drain(runtime: Minyi) -> None:
    telegram = runtime.channels.get("telegram")
    if isinstance(telegram, TelegramChannel) and telegram.sender is not None:
        clock = VirtualTime()  # the group's pacing (about 20 a minute) without waiting for it
        telegram.sender.clock, telegram.sender.sleep = clock.clock, clock.sleep
    notifier = runtime.notifier
    await until_done(notifier.run_once)


async def test_an_unhappy_rating_tells_staff_the_rating_not_only_the_matter(
    sqlite_only: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    fake, base = endpoints
    async with open_minyi(with_staff(sqlite_only, base)) as runtime:
        code = await file_on(runtime, "webchat", "rates-low")
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            for step in ("accepted", "replied", "closed"):
                await record_progress(uow, case, Progress(step), runtime.deadlines, utcnow())
            await ratings.record_rating(
                uow, case, score=3, scale=3, label="不满意", unhappy=True, channel="sms",
                comment="灯修好两天又坏了，打13800138000没人接",
            )  # fmt: skip
            await uow.commit()
        await drain(runtime)
    alert = next(m["text"] for m in fake.telegram if "群众对办理结果不满意" in m["text"])
    assert "评价：不满意，理由：灯修好两天又坏了" in alert and code in alert
    assert "13800138000" not in alert and "138****8000" in alert


async def make_due(runtime: Minyi) -> None:
    """Skip the back-off wait: what the clock would do."""
    async with runtime.db.session() as session, session.begin():
        await session.execute(update(Notification).values(next_attempt_at=utcnow()))


async def test_staff_hear_of_a_handoff_everywhere(
    settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    fake, base = endpoints
    async with open_minyi(with_staff(settings, base)) as runtime:
        citizen = Citizen(runtime, sender="needs-help")
        await citizen.file_a_matter()
        await citizen.say("人工")
        await drain(runtime)
    assert len(fake.telegram) == 1 and fake.telegram[0]["chat_id"] == "-1001234"
    assert "群众要求人工服务" in fake.telegram[0]["text"]
    assert len(fake.wecom) == 1 and fake.wecom[0]["msgtype"] == "markdown"
    assert "群众要求人工服务" in fake.wecom[0]["markdown"]["content"]
    body, signature = fake.webhook[0]
    assert hmac.compare_digest(
        signature, hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    alert = json.loads(body)["alerts"][0]
    assert alert["reason"] == "handoff" and alert["channel"] == "网页"


async def test_risky_matter_alert_masks_the_phone_and_wecom_batches(
    database_settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    fake, base = endpoints
    async with open_minyi(with_staff(database_settings, base)) as runtime:
        for n in range(3):
            await Citizen(runtime, sender=f"risk-{n}").file_a_matter(
                "拖欠工资半年，老板不给钱我就去跳楼，说到做到"
            )
        await drain(runtime)
    # Per citizen: a risk handoff when the words appeared, and a risk alert with the case.
    assert len(fake.telegram) == 6
    with_case = [m["text"] for m in fake.telegram if "事项：XF" in m["text"]]
    assert len(with_case) == 3 and all(
        "138****8000" in t and "13800138000" not in t for t in with_case
    )
    assert all("风险词：跳楼" in t for t in with_case)
    assert len(fake.wecom) == 1  # six alerts, one markdown message (the robot allows 20 a minute)
    assert fake.wecom[0]["markdown"]["content"].count("高风险事项") == 6


async def test_the_wecom_robot_is_never_sent_what_it_would_drop(
    database_settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    """25 alerts, one after another: 20 go out, the rest wait for the robot's minute to pass."""
    fake, base = endpoints
    settings = database_settings.replace(staff_wecom_key="robot-key", staff_wecom_api_base=base)
    async with open_minyi(settings) as runtime:
        for n in range(WECOM_PER_MINUTE + 5):
            await Citizen(runtime, sender=f"needs-help-{n}").say("人工")
            await drain(runtime)
        async with runtime.db.session() as session:
            jobs = list(await session.scalars(select(Notification)))
    assert fake.wecom_dropped == []
    assert len(fake.wecom) == WECOM_PER_MINUTE
    waiting = [job for job in jobs if job.status == "pending"]
    assert len(waiting) == 5 and all(job.next_attempt_at > utcnow() for job in waiting)


async def test_a_failing_target_is_retried_alone(
    database_settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    fake, base = endpoints
    fake.webhook_status = 500
    async with open_minyi(with_staff(database_settings, base)) as runtime:
        await Citizen(runtime).say("人工")
        await drain(runtime)
        assert len(fake.telegram) == 1 and len(fake.webhook) == 1
        async with runtime.db.session() as session:
            job = (await session.scalars(select(Notification))).one()
        assert (
            job.status == "pending"
            and job.done_routes == ["telegram", "wecom"]
            and job.attempts == 1
        )
        fake.webhook_status = 200
        await make_due(runtime)
        await drain(runtime)
        async with runtime.db.session() as session:
            job = (await session.scalars(select(Notification))).one()
    assert (
        job.status == "sent"
        and len(fake.webhook) == 2
        and len(fake.telegram) == 1
        and len(fake.wecom) == 1
    )


async def test_no_staff_target_is_recorded_not_pretended(runtime: Minyi) -> None:
    await Citizen(runtime).say("人工")
    await drain(runtime)
    async with runtime.db.session() as session:
        job = (await session.scalars(select(Notification))).one()
    assert job.status == "skipped" and "MINYI_STAFF_" in job.last_error


# -- the citizen's own channel --------------------------------------------------------------------


@dataclass
class ScriptedChannel:
    """A stand-in for a provider channel whose outcome each test chooses (providers' own fakes
    are exercised in their channel tests); records what it was asked to send."""

    name: str
    outcomes: list[Exception | str | None] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    templates: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    title: str = "测试"

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    def reach(self, recipient: Recipient) -> list[Route]:
        """As the real channel of that name: a WeChat stand-in has its template route too, an
        SMS one reaches any mobile on file."""
        if self.name == "sms":
            return self.by_phone(recipient)
        routes = reach_by_send(self, recipient)
        if self.name == "wechat" and routes:

            async def template(notice: Notice) -> str | None:
                key = f"{notice.key}:tpl"
                return await self.send_template(recipient.address, dict(notice.fields), key)

            routes.append(
                Route("wechat_template", "wechat", conversational=False, deliver=template)
            )
        return routes

    async def start(self, services: Services) -> None:
        return None

    async def close(self) -> None:
        return None

    def _next(self) -> str | None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        self.sent.append((recipient, replies[0].text))
        return self._next()

    def by_phone(self, recipient: Recipient) -> list[Route]:
        if not recipient.phone or not recipient.sms_allowed:
            return []

        async def text(notice: Notice) -> str | None:
            return await self.send(recipient.phone, notice.replies)

        return [Route("sms", "sms", conversational=False, deliver=text)]

    async def send_template(self, openid: str, fields: dict[str, str], idempotency_key: str) -> str:
        self.templates.append((openid, fields, idempotency_key))
        outcome = self._next()
        return outcome or "tpl-1"


async def accept(runtime: Minyi, code: str) -> None:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        await record_progress(uow, case, Progress("accepted"), runtime.deadlines, utcnow())
        await uow.commit()


async def file_on(runtime: Minyi, channel: str, sender: str = "who") -> str:
    reply = await Citizen(runtime, sender=sender, channel=channel).file_a_matter()
    return reply.split("编号是 ")[1].split("，")[0]


async def timeline(runtime: Minyi, code: str) -> list[tuple[str, dict[str, Any]]]:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        return [(e.type, e.data) for e in await uow.events.events(case)]


async def runtime_with(settings: Settings, *channels: ScriptedChannel) -> Any:
    async def handle(inbound: Inbound) -> list[Reply]:
        raise AssertionError("not used")

    return open_minyi(
        settings,
        replace_channels={"webchat": WebChatChannel(handle), **{c.name: c for c in channels}},
    )


async def test_wechat_outside_48_hours_falls_back_to_template_then_sms(
    database_settings: Settings,
) -> None:
    wechat = ScriptedChannel(
        "wechat",
        [RecipientUnreachable("45015 回复时间超过限制"), RecipientUnreachable("no template")],
    )
    sms = ScriptedChannel("sms", ["sms-msg-1"])
    async with await runtime_with(database_settings, wechat, sms) as runtime:
        code = await file_on(runtime, "wechat", "openid-7")
        await accept(runtime, code)
        await drain(runtime)
        events = await timeline(runtime, code)
        report = DeliveryReport("sms", "sms-msg-1", True, "DELIVERED")
        await DeliveryReports(runtime.units)(report)
        after_report = await timeline(runtime, code)
    assert wechat.sent[0][0] == "openid-7" and "已受理" in wechat.sent[0][1]
    assert wechat.templates[0][1]["code"] == code and wechat.templates[0][1]["status"] == "已受理"
    assert sms.sent == [("+8613800138000", wechat.sent[0][1])]
    kinds = [(t, d.get("route")) for t, d in events if t.startswith("notification")]
    assert kinds == [
        ("notification.attempt_failed", "wechat"),
        ("notification.attempt_failed", "wechat_template"),
        ("notification.sent", "sms"),
    ]
    assert after_report[-1] == (
        "notification.delivery",
        {"message_id": "sms-msg-1", "delivered": True, "status": "DELIVERED", "detail": ""},
    )


async def test_a_passing_failure_waits_and_retries_then_gives_up_and_tells_staff(
    database_settings: Settings,
) -> None:
    telegram = ScriptedChannel("telegram", [DeliveryFailed("HTTP 502", retry_after=1)] * 10)
    async with await runtime_with(database_settings, telegram) as runtime:
        code = await file_on(runtime, "telegram", "chat-1")
        await accept(runtime, code)
        for _ in range(8):
            await drain(runtime)
            await make_due(runtime)
        async with runtime.db.session() as session:
            jobs = {j.topic: j for j in await session.scalars(select(Notification))}
        events = [t for t, _ in await timeline(runtime, code)]
    assert len(telegram.sent) == 6  # the first try and five back-offs
    assert jobs["accepted"].status == "failed" and "HTTP 502" in jobs["accepted"].last_error
    assert events.count("notification.attempt_failed") == 6 and events[-1] == "notification.failed"
    assert jobs["notification.failed"].audience == "staff"


async def test_blocked_telegram_marks_the_identity_and_uses_sms(
    database_settings: Settings,
) -> None:
    telegram = ScriptedChannel(
        "telegram", [RecipientUnreachable("Forbidden: bot was blocked by the user", lasting=True)]
    )
    sms = ScriptedChannel("sms", [None, None])
    async with await runtime_with(database_settings, telegram, sms) as runtime:
        code = await file_on(runtime, "telegram", "chat-9")
        await accept(runtime, code)
        await drain(runtime)
        async with runtime.db.session() as session:
            identity = (
                await session.scalars(select(Identity).where(Identity.channel == "telegram"))
            ).one()
        assert identity.unreachable_at is not None and len(sms.sent) == 1
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            await record_progress(
                uow, case, Progress("replied", note="已处理"), runtime.deadlines, utcnow()
            )
            await uow.commit()
        await drain(runtime)
    assert len(telegram.sent) == 1 and len(sms.sent) == 2  # Telegram is not tried again


async def test_web_chat_keeps_messages_until_the_page_comes_back(
    aiohttp_client: Any, settings: Settings
) -> None:
    from bot.app.appkeys import MINYI
    from bot.app.web import create_app

    client = await aiohttp_client(create_app(settings, workers=False))
    runtime = client.server.app[MINYI]
    citizen = Citizen(runtime, sender=web_sender(runtime))
    reply = await citizen.file_a_matter()
    code = reply.split("编号是 ")[1].split("，")[0]
    await accept(runtime, code)
    assert (await (await client.get("/webchat/messages", **with_cookie())).json()) == {
        "replies": []
    }
    await drain(runtime)
    pending = await (await client.get("/webchat/messages", **with_cookie())).json()
    assert (
        len(pending["replies"]) == 1
        and code in pending["replies"][0]["text"]
        and "已受理" in pending["replies"][0]["text"]
    )
    assert (await (await client.get("/webchat/messages", **with_cookie())).json()) == {
        "replies": []
    }
    # Another chat (or none: a cookie is issued) reads nothing of it.
    assert (await (await client.get("/webchat/messages", **with_cookie("d" * 43))).json()) == {
        "replies": []
    }
    assert (
        "notification.sent",
        {"topic": "accepted", "route": "mailbox", "message_id": ""},
    ) in await timeline(runtime, code)


async def test_an_open_web_chat_page_hears_its_message_at_once(
    aiohttp_client: Any, settings: Settings
) -> None:
    """The page's long poll, waiting before anything is kept, is answered by the message kept
    for it (on PostgreSQL + Redis through the bus another process would publish on too); other
    pages go on waiting, and a wait out of range is refused with a sentence."""
    from bot.app.appkeys import MINYI
    from bot.app.web import create_app

    client = await aiohttp_client(create_app(settings, workers=False))
    runtime = client.server.app[MINYI]
    mailbox = runtime.channels["webchat"].mailbox
    other = "o" * 43
    waiting = asyncio.create_task(client.get("/webchat/messages?wait=20", **with_cookie()))
    bystander = asyncio.create_task(client.get("/webchat/messages?wait=1", **with_cookie(other)))
    await asyncio.sleep(0.3)  # both polls are held
    assert not waiting.done()
    await mailbox.put(web_sender(runtime), [Reply(text="工作人员小刘：您好，请讲。")])
    answer = await asyncio.wait_for(waiting, 10)  # far sooner than the 20 s the poll may wait
    assert [r["text"] for r in (await answer.json())["replies"]] == ["工作人员小刘：您好，请讲。"]
    assert (await (await bystander).json()) == {"replies": []}
    refused = await client.get("/webchat/messages?wait=26", **with_cookie())
    assert refused.status == 422 and "0-25" in (await refused.json())["message"]


async def test_an_unsubscribed_wechat_user_without_phone_is_recorded_as_unreachable(
    database_settings: Settings,
) -> None:
    wechat = ScriptedChannel("wechat")
    async with await runtime_with(database_settings, wechat) as runtime:
        code = await file_on(runtime, "wechat", "openid-gone")
        await runtime.handle(
            Inbound(channel="wechat", sender="openid-gone", kind="event", event="unsubscribe")
        )
        await accept(runtime, code)
        await drain(runtime)
        events = [t for t, _ in await timeline(runtime, code)]
    assert wechat.sent == [] and events[-1] == "notification.failed"


async def test_with_workers_running_the_loop_closes_by_itself(
    aiohttp_client: Any, settings: Settings
) -> None:
    """`minyi serve` as shipped: the API call wakes the workers; the feed and the mailbox fill."""
    import asyncio

    from bot.app.appkeys import MINYI
    from bot.app.web import create_app

    client = await aiohttp_client(create_app(settings))
    citizen = Citizen(client.server.app[MINYI], sender=web_sender(client.server.app[MINYI]))
    code = (await citizen.file_a_matter()).split("编号是 ")[1].split("，")[0]
    auth = {"Authorization": "Bearer test-token"}
    response = await client.post(
        f"/api/v1/cases/{code}/events", json={"type": "accepted"}, headers=auth
    )
    assert response.status == 200
    events: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for _ in range(200):  # bounded: the workers need a few event-loop turns, not wall time
        events = (await (await client.get("/api/v1/events", headers=auth)).json())["events"]
        pending += (await (await client.get("/webchat/messages", **with_cookie())).json())[
            "replies"
        ]
        if len(events) == 2 and pending:
            break
        await asyncio.sleep(0.02)
    assert [e["type"] for e in events] == ["case.submitted", "case.updated"]
    assert len(pending) == 1 and "已受理" in pending[0]["text"]


async def test_staff_hear_of_a_citizens_supplement_and_urge(
    database_settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    """补充 and 催办 (issue 17.3) reach the staff front ends as the existing alerts do."""
    fake, base = endpoints
    async with open_minyi(with_staff(database_settings, base)) as runtime:
        citizen = Citizen(runtime, sender="follows-up")
        code = re.search(r"XF\d{8}-[0-9A-Z]{6}", await citizen.file_a_matter())
        assert code is not None
        await citizen.say(code.group())
        await citizen.say("补充")
        await citizen.say("灯杆旁边的电线也露出来了，很危险。")
        await citizen.say("完成")
        assert "第1次" in await citizen.say("催办")
        await drain(runtime)
    reasons = [alert for body, _ in fake.webhook for alert in json.loads(body)["alerts"]]
    assert [(a["reason"], a["code"]) for a in reasons] == [
        ("supplemented", code.group()),
        ("urged", code.group()),
    ]
    assert "电线也露出来了" in reasons[0]["summary"]
    texts = " ".join(m["text"] for m in fake.telegram)
    assert "群众补充了材料" in texts and "群众催办" in texts


async def test_a_notice_sent_while_the_database_restarts_is_recorded_not_sent_again(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13's soak: PostgreSQL restarted between a WeChat notice going out and its record;
    the job stayed leased and, 120 s later, the citizen got the notice a second time. The
    record is now retried while the database comes back."""
    from sqlalchemy.exc import DBAPIError

    from bot.backoffice import recording

    wechat = ScriptedChannel("wechat", ["msg-1"])
    async with await runtime_with(database_settings, wechat) as runtime:
        code = await file_on(runtime, "wechat", "openid-restart")
        await accept(runtime, code)
        citizens = runtime.notifier.citizens
        record_once = citizens._record_once
        failures = [2]  # the connection is cut twice, as by a restart

        async def cut_then_record(*args: Any, **kwargs: Any) -> None:
            if failures[0]:
                failures[0] -= 1
                raise DBAPIError("UPDATE notifications …", None, ConnectionError("closed"))
            await record_once(*args, **kwargs)

        citizens._record_once = cut_then_record  # type: ignore[method-assign]
        monkeypatch.setattr(recording, "PAUSES", (0.01, 0.01, 0.01))
        await drain(runtime)
        async with runtime.db.session() as session:
            jobs = list(await session.scalars(select(Notification)))
        assert [j.status for j in jobs if j.topic == "accepted"] == ["sent"]
    assert len(wechat.sent) == 1 and failures == [0]


async def test_a_run_cut_before_sending_gives_its_leases_back_in_order(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13's soak: a run cut by the PostgreSQL restart while reading its jobs left them
    leased for two minutes. Nothing was sent, so the failed job and the case's later ones are
    given back, and the next run sends them at once and in order."""
    wechat = ScriptedChannel("wechat", ["msg-1", "msg-2"])
    async with await runtime_with(database_settings, wechat) as runtime:
        code = await file_on(runtime, "wechat", "openid-cut")
        await accept(runtime, code)
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            await record_progress(
                uow, case, Progress("replied", note="已修复"), runtime.deadlines, utcnow()
            )
            await uow.commit()
        citizens = runtime.notifier.citizens
        monkeypatch.setattr(citizens, "_read", connection_cut_once(citizens._read))
        with pytest.raises(NotSent):
            await runtime.notifier.run_once()
        async with runtime.db.session() as session:
            jobs = list(await session.scalars(select(Notification)))
        assert [j.leased_until for j in jobs if j.status == "pending"] == [None, None]
        await drain(runtime)
    (first, second) = [text for _, text in wechat.sent]
    assert "已受理" in first and "已受理" not in second  # in the order they were queued
