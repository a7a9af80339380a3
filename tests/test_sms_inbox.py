"""The SMS inbox: a push's replies kept in one transaction, worked through after, none lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from bot.backoffice import sms_inbox
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


async def test_ratings_go_in_lanes_each_phone_in_one_in_order(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two transactions of ratings are in flight at once; a phone's replies are
    all in one lane, in the order they came, across that lane's transactions. SQLite, with its
    one writer, has one lane."""
    monkeypatch.setattr(sms_inbox, "TOGETHER", 7)
    monkeypatch.setattr(sms_inbox, "TOGETHER_SQLITE", 7)
    async with open_minyi(database_settings) as runtime:
        batches: list[list[str]] = []
        lane_of: dict[str, int] = {}  # the task (the lane) each reply was handed over in
        in_flight = most = 0

        async def handle_many(replies: Sequence[SmsReply]) -> list[bool]:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)  # the transaction's round trips
            batches.append([r.dedupe_key for r in replies])
            lane_of.update({r.dedupe_key: id(asyncio.current_task()) for r in replies})
            in_flight -= 1
            return [True] * len(replies)

        async def one_by_one(reply: SmsReply) -> None:
            raise AssertionError("every reply was taken together")

        inbox = SmsInbox(runtime.db, runtime.cipher, one_by_one, lambda touched: None, handle_many)
        # 50 phones; 49 and 0…9 twice, the second time at an odd distance from the first.
        push = [_reply(n, f"{n % 3 + 1}") for n in [*range(50), 99, *range(100, 110)]]
        await inbox.take(push)
        while await inbox.work_once():
            pass

        assert sorted(key for batch in batches for key in batch) == sorted(
            r.dedupe_key for r in push
        )
        assert all(len(batch) <= 7 for batch in batches)
        assert most == (1 if runtime.db.is_sqlite else sms_inbox.LANES)
        order = [key for batch in batches for key in batch]
        for phone in {r.phone for r in push}:
            mine = [r.dedupe_key for r in push if r.phone == phone]
            # One lane had all of the phone's replies, and handed them over in their order.
            assert len({lane_of[key] for key in mine}) == 1
            assert [key for key in order if key in mine] == mine
        assert len(set(lane_of.values())) == (1 if runtime.db.is_sqlite else sms_inbox.LANES)
        assert await inbox.waiting() == 0
