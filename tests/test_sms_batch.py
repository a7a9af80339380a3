"""SMS ratings worked through many at a time: one transaction per batch, the rest one by one,
each phone in order, a failed batch retried reply by reply, nothing taken twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice import survey_replies
from channels.sms import SmsReply
from conversation.codes import new_case_code, short_reference
from storage import notifications, outbox
from storage.models import (
    Case,
    CaseEvent,
    Citizen,
    Identity,
    Notification,
    OutboxEntry,
    SmsInbound,
    SmsReplyWaiting,
    Survey,
    utcnow,
)
from storage.timeline import Timeline

BASE = 100  # case and citizen ids of this file's rows


def phone(n: int) -> str:
    return f"+86139{n:08d}"


async def closed_cases(runtime: Minyi, count: int) -> list[str]:
    """`count` closed cases, each with an open survey on the phone `phone(n)`; their codes."""
    cipher, now = runtime.cipher, utcnow()
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_case_code(date(2026, 11, 30)))
    ordered = sorted(codes)
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            insert(Identity),
            [
                {
                    "id": BASE + n,
                    "channel": "webchat",
                    "external_id": f"batch-{n}",
                    "language": "zh",
                    "created_at": now,
                }
                for n in range(count)
            ],
        )
        await conn.execute(
            insert(Citizen),
            [
                {
                    "id": BASE + n,
                    "phone_hash": cipher.phone_hash(phone(n)),
                    "phone_enc": cipher.encrypt(phone(n), "phone"),
                    "created_at": now,
                }
                for n in range(count)
            ],
        )
        await conn.execute(
            insert(Case),
            [
                {
                    "id": BASE + n,
                    "code": code,
                    "origin": f"test:{n}",
                    "kind": "petition",
                    "category": "city",
                    "description": "路灯坏了",
                    "location_text": "幸福路",
                    "channel": "sms",
                    "identity_id": BASE + n,
                    "citizen_id": BASE + n,
                    "contact_phone_enc": cipher.encrypt(phone(n), "phone"),
                    "source": "",
                    "language": "zh",
                    "answers": {},
                    "risk_words": [],
                    "status": "closed",
                    "department": "",
                    "created_at": now,
                    "updated_at": now,
                    "closed_at": now,
                    "extended_days": 0,
                    "extension_reason": "",
                    "stages": [],
                }
                for n, code in enumerate(ordered)
            ],
        )
        await conn.execute(
            insert(Survey),
            [
                {
                    "case_id": BASE + n,
                    "status": "open",
                    "scale": 3,
                    "created_at": now,
                    "expires_at": now + timedelta(days=7),
                    "answered_via": "",
                    "phone_hash": cipher.phone_hash(phone(n)),
                }
                for n in range(count)
            ],
        )
    return ordered


def reply(n: int, text: str, key: str) -> SmsReply:
    return SmsReply(
        provider="aliyun",
        phone=phone(n),
        text=text,
        received_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        dedupe_key=key,
    )


def watch_batches(runtime: Minyi) -> list[list[tuple[str, bool]]]:
    """What each batch was given and took: (dedupe key, handled) per reply; none taken when
    the batch raised."""
    seen: list[list[tuple[str, bool]]] = []
    many = runtime.survey_replies.many

    async def spy(replies: Sequence[SmsReply]) -> list[bool]:
        try:
            taken = await many(replies)
        except Exception:
            seen.append([(r.dedupe_key, False) for r in replies])  # nothing of it was written
            raise
        seen.append([(r.dedupe_key, ok) for r, ok in zip(replies, taken, strict=True)])
        return taken

    runtime.sms_inbox.handle_many = spy
    return seen


async def work(runtime: Minyi) -> None:
    while await runtime.sms_inbox.work_once():
        pass


async def case_rows(runtime: Minyi) -> dict[str, Case]:
    async with runtime.db.session() as session:
        return {c.code: c for c in await session.scalars(select(Case).where(Case.id >= BASE))}


async def rated_events(runtime: Minyi) -> list[str]:
    async with runtime.db.session() as session:
        return list(
            await session.scalars(
                select(OutboxEntry.case_code)
                .where(OutboxEntry.type == "case.rated")
                .order_by(OutboxEntry.seq)
            )
        )


async def chains_hold(runtime: Minyi) -> bool:
    async with runtime.db.session() as session:
        cases = list(await session.scalars(select(Case).where(Case.id >= BASE)))
        checks = [await Timeline(session).verify(case) for case in cases]
    return all(check.ok for check in checks)


async def waiting(runtime: Minyi) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(SmsReplyWaiting)) or 0)


async def test_a_batch_rates_many_and_each_phone_keeps_its_order(
    database_settings: Settings,
) -> None:
    async with open_minyi(database_settings) as runtime:
        codes = await closed_cases(runtime, 40)
        seen = watch_batches(runtime)
        push = [reply(n, f"{1 + n % 3} {short_reference(codes[n])}", f"r{n}") for n in range(40)]
        # Phone 0 comments right after its rating; phone 1 says something unclear first, then
        # rates; phone 2's rating comes twice in the same push (the provider's re-delivery).
        push.insert(1, reply(0, "处理得很及时，谢谢", "c0"))
        push.insert(2, reply(1, "你好", "u1"))
        push.append(reply(2, f"3 {short_reference(codes[2])}", "r2"))
        await runtime.sms_inbox.take(push)
        await work(runtime)

        cases = await case_rows(runtime)
        assert all(case.status == "rated" for case in cases.values())
        assert cases[codes[0]].rating_comment == "处理得很及时，谢谢"  # the comment came after
        assert sorted(await rated_events(runtime)) == sorted(codes)  # each rated once
        assert await chains_hold(runtime)
        assert await waiting(runtime) == 0
        # The ratings went through together; phone 0's comment, and everything of phone 1
        # from its unclear reply on, were left to be handled one by one after.
        taken = {key for batch in seen for key, ok in batch if ok}
        assert {f"r{n}" for n in range(40)} - {"r1"} <= taken
        assert not {"c0", "u1", "r1"} & taken
        assert sum(ok for batch in seen for _, ok in batch) >= 39


async def test_a_failing_batch_is_worked_through_one_by_one(
    database_settings: Settings,
) -> None:
    async with open_minyi(database_settings) as runtime:
        codes = await closed_cases(runtime, 12)
        seen = watch_batches(runtime)
        bad = codes[5]
        record = runtime.survey_replies._record

        async def breaks_on_one(uow, parsed, chosen, case, now) -> None:  # type: ignore[no-untyped-def]
            if case.code == bad:
                raise RuntimeError("this case's row cannot be written")
            await record(uow, parsed, chosen, case, now)

        runtime.survey_replies._record = breaks_on_one  # type: ignore[method-assign]
        push = [reply(n, f"1 {short_reference(codes[n])}", f"r{n}") for n in range(12)]
        push.append(reply(5, "还有一句话", "c5"))  # waits behind its phone's failed rating
        await runtime.sms_inbox.take(push)
        assert await runtime.sms_inbox.work_once() == 13

        # The batch with phone 5's rating was written not at all (on PostgreSQL the other lane's
        # went through); one by one, everything but phone 5 went through.
        failed = [batch for batch in seen if ("r5", False) in batch]
        assert len(failed) == 1 and not any(ok for _, ok in failed[0])
        cases = await case_rows(runtime)
        assert [c for c in codes if cases[c].status != "rated"] == [bad]
        assert sorted(await rated_events(runtime)) == sorted(c for c in codes if c != bad)
        assert await chains_hold(runtime)
        assert await waiting(runtime) == 2  # phone 5's rating and comment, retried later

        runtime.survey_replies._record = record  # type: ignore[method-assign]
        async with runtime.db.engine.begin() as conn:  # due again now
            await conn.execute(SmsReplyWaiting.__table__.update().values(next_try_at=utcnow()))
        await work(runtime)
        cases = await case_rows(runtime)
        assert cases[bad].status == "rated" and cases[bad].rating_comment == "还有一句话"
        assert sorted(await rated_events(runtime)) == sorted(codes)
        assert await waiting(runtime) == 0


async def test_a_push_delivered_again_later_changes_nothing(
    database_settings: Settings,
) -> None:
    async with open_minyi(database_settings) as runtime:
        codes = await closed_cases(runtime, 10)
        seen = watch_batches(runtime)
        push = [reply(n, f"2 {short_reference(codes[n])}", f"r{n}") for n in range(10)]
        await runtime.sms_inbox.take(push)
        await work(runtime)
        first = len(seen)
        await runtime.sms_inbox.take(push)  # the provider pushes it all again
        await work(runtime)
        assert sorted(await rated_events(runtime)) == sorted(codes)
        assert await waiting(runtime) == 0
        # The second time, the batches (one per lane) recognised every reply as taken and
        # wrote nothing.
        again = [pair for batch in seen[first:] for pair in batch]
        assert sorted(again) == sorted((f"r{n}", True) for n in range(10))
        assert await chains_hold(runtime)


async def test_two_inboxes_at_once_rate_each_case_once(shared_settings: Settings) -> None:
    async with open_minyi(shared_settings) as one, open_minyi(shared_settings) as two:
        codes = await closed_cases(one, 60)
        push = [reply(n, f"1 {short_reference(codes[n])}", f"r{n}") for n in range(60)]
        # The same replies twice, in two pushes: each process may lease either copy.
        await one.sms_inbox.take(push[:30] + push[30:])
        await two.sms_inbox.take(push[30:] + push[:30])

        async def drain(runtime: Minyi) -> None:
            for _ in range(20):
                await runtime.sms_inbox.work_once()

        await asyncio.gather(drain(one), drain(two))
        await work(one)
        assert sorted(await rated_events(one)) == sorted(codes)
        assert all(case.status == "rated" for case in (await case_rows(one)).values())
        assert await chains_hold(one)


async def test_the_batch_writes_the_rows_one_by_one_would(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same replies, at the same moment, to twin cases: one half through the batch (Core
    statements), the other one by one (the unit of work's flush) — the same rows either way."""
    moment = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    for module in (survey_replies, outbox, notifications):
        monkeypatch.setattr(module, "utcnow", lambda: moment)
    async with open_minyi(database_settings) as runtime:
        codes = await closed_cases(runtime, 8)
        texts = ["1 {ref}", "2 {ref}", "3 {ref}", "{ref} 3 等太久了"]  # two unhappy, one said why
        twins = [(codes[n], codes[n + 4]) for n in range(4)]

        def of(n: int) -> SmsReply:
            return reply(n, texts[n % 4].format(ref=short_reference(codes[n])), f"k{n}")

        assert await runtime.survey_replies.many([of(n) for n in range(4)]) == [True] * 4
        for n in range(4, 8):
            await runtime.survey_replies(of(n))

        async with runtime.db.session() as session:

            async def rows(model: type[Any], *where: Any) -> list[dict[str, Any]]:
                table = model.__table__
                found = await session.execute(
                    select(table).where(*where).order_by(*table.primary_key)
                )
                return [dict(row._mapping) for row in found]

            def same(code: str, row: dict[str, Any], leave: set[str]) -> dict[str, Any]:
                kept = {k: v for k, v in row.items() if k not in leave}
                return json.loads(json.dumps(kept, default=str).replace(code, "CODE"))

            for batched, single in twins:
                ids = {}
                for code in (batched, single):
                    ids[code] = (await rows(Case, Case.code == code))[0]["id"]
                per_case = [
                    (
                        Case,
                        {"id", "code", "origin", "identity_id", "citizen_id", "contact_phone_enc"},
                        "id",
                    ),
                    (Survey, {"id", "case_id", "phone_hash"}, "case_id"),
                    (CaseEvent, {"id", "case_id", "hash", "prev_hash"}, "case_id"),
                    (Notification, {"id", "case_id", "created_at"}, "case_id"),
                ]
                for model, leave, column in per_case:
                    got = {}
                    for code in (batched, single):
                        found = await rows(model, model.__table__.c[column] == ids[code])
                        survey = (await rows(Survey, Survey.case_id == ids[code]))[0]["id"]
                        got[code] = [same(code, r, leave) for r in found]
                        for r in got[code]:  # the citizen's unhappy SMS: keyed by the survey
                            if "key" in r:
                                r["key"] = r["key"].replace(f"unhappy:{survey}", "unhappy:S")
                    assert got[batched] == got[single], model.__name__
                    assert got[batched] or model is Notification, model.__name__
                outboxes = {
                    code: [
                        same(code, r, {"seq", "id", "created_at"})
                        for r in await rows(OutboxEntry, OutboxEntry.case_code == code)
                    ]
                    for code in (batched, single)
                }
                assert outboxes[batched] == outboxes[single] and len(outboxes[batched]) == 1
            taken = await session.scalar(select(func.count()).select_from(SmsInbound))
        assert taken == 8
        assert await chains_hold(runtime)
        unhappy = await rows_count(runtime, Notification)
        assert unhappy == 8  # each unhappy rating: staff and the citizen's SMS, both ways


async def rows_count(runtime: Minyi, model: type[Any]) -> int:
    async with runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
