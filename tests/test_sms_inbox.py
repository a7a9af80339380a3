"""The SMS inbox: a push's replies kept in one transaction, worked through after, none lost."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from bot.backoffice.sms_inbox import SmsInbox
from channels.sms import SmsReply
from storage.models import SmsReplyWaiting


def _reply(n: int, text: str) -> SmsReply:
    return SmsReply(
        provider="aliyun",
        phone=f"+86138{n % 50:08d}",
        text=text,
        received_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        dedupe_key=f"push-{n}",
    )


async def test_a_push_is_kept_then_worked_through_in_order(database_settings: Settings) -> None:
    async with open_minyi(database_settings) as runtime:
        handled: list[SmsReply] = []

        async def handle(reply: SmsReply) -> None:
            handled.append(reply)

        woken: list[frozenset[str]] = []
        inbox = SmsInbox(runtime.db, runtime.cipher, handle, woken.append)
        push = [_reply(n, f"{n // 50 + 1} 第{n}条") for n in range(300)]  # 50 phones, 6 each
        await inbox.take(push)
        assert woken == [frozenset({"sms_replies"})]
        async with runtime.db.reading() as session:
            stored = list(await session.scalars(select(SmsReplyWaiting.reply_enc)))
        assert len(stored) == 300
        assert not any(b"138000000" in blob or "第".encode() in blob for blob in stored)
        while await inbox.work_once():
            pass
        assert sorted(r.dedupe_key for r in handled) == sorted(r.dedupe_key for r in push)
        for phone in {r.phone for r in push}:  # each phone's replies in the order they came
            mine = [r.dedupe_key for r in handled if r.phone == phone]
            assert mine == [r.dedupe_key for r in push if r.phone == phone]
        assert await inbox.waiting() == 0


async def test_a_reply_that_fails_waits_with_its_phone(database_settings: Settings) -> None:
    async with open_minyi(database_settings) as runtime:
        handled: list[str] = []

        async def handle(reply: SmsReply) -> None:
            if reply.text == "坏":
                raise RuntimeError("the survey's row is locked")
            handled.append(reply.dedupe_key)

        inbox = SmsInbox(runtime.db, runtime.cipher, handle, lambda touched: None)
        await inbox.take([_reply(1, "1"), _reply(51, "坏"), _reply(101, "很好"), _reply(2, "2")])
        assert await inbox.work_once() == 4
        # Phone 1's rating went through; its failed reply and the comment after it wait.
        assert handled == ["push-1", "push-2"]
        assert await inbox.waiting() == 2
        assert await inbox.work_once() == 0  # not due again yet
        async with runtime.db.reading() as session:
            attempts = list(await session.scalars(select(SmsReplyWaiting.attempts)))
        assert attempts == [1, 1]


async def test_nothing_to_keep_is_no_transaction(database_settings: Settings) -> None:
    async with open_minyi(database_settings) as runtime:
        woken: list[frozenset[str]] = []
        inbox = SmsInbox(runtime.db, runtime.cipher, lambda reply: None, woken.append)  # type: ignore[arg-type,return-value]
        await inbox.take([])
        assert woken == []
        assert await inbox.work_once() == 0
