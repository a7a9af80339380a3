"""Storage contract, run against SQLite and PostgreSQL: codes, timeline chain, outbox, PII at rest."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from bot.app.wiring import Minyi
from conversation.codes import ALPHABET, CASE_CODE_RE, find_case_code, new_case_code
from storage.models import Base, Case, OutboxEntry
from storage.timeline import verify_chain
from storage.uow import UnitOfWork

from .conftest import Citizen

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


async def filed(runtime: Minyi, sender: str = "c1") -> str:
    reply = await Citizen(runtime, sender=sender).file_a_matter()
    match = CODE.search(reply)
    assert match
    return match.group()


def test_case_codes_follow_the_contract() -> None:
    codes = {new_case_code(date(2026, 11, 22)) for _ in range(2000)}
    # 32**6 codes a day: one repeat among 2,000 happens about once in 540 runs (it failed CI
    # once), two about once in 580,000. The unique index refuses a repeat and the turn runs again.
    assert len(codes) >= 1999
    for code in codes:
        assert CASE_CODE_RE.fullmatch(code) and code.startswith("XF20261122-")
        assert not set(code[11:]) & set("ILOU")
    # Every character of the alphabet at every position (2,000 draws miss one with a chance of
    # about 32 * 6 * (31/32)**2000, nil): no position is stuck or drawn from part of it.
    for position in range(11, 17):
        assert {code[position] for code in codes} == set(ALPHABET)
    assert find_case_code("我的编号是xf20261122-7k3m9q，帮我查一下") == "XF20261122-7K3M9Q"
    assert find_case_code("XF20261122 7K3M9Q") == "XF20261122-7K3M9Q"
    assert find_case_code("ＸＦ２０２６１１２２－７Ｋ３Ｍ９Ｑ") == "XF20261122-7K3M9Q"
    assert find_case_code("XF20261122-7K3MO1") == "XF20261122-7K3M01"  # O read as 0
    assert find_case_code("XF2026112-7K3M9Q") is None


async def test_migrations_match_the_models(runtime: Minyi) -> None:
    async with runtime.db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert diff == []


async def test_no_plaintext_name_or_phone_in_any_row(runtime: Minyi) -> None:
    citizen = Citizen(runtime, sender="pii-check")
    await citizen.say("1")
    await citizen.say("1")
    await citizen.say("物业不给修漏水的屋顶，已经三个月了")
    await citizen.say("幸福小区")
    await citizen.say("跳过")
    await citizen.say("欧阳娜娜")
    await citizen.say("13912345678")  # mid-form: state and dedupe hold the summary now
    dump = await raw_dump(runtime)
    await citizen.say("1")
    dump += await raw_dump(runtime)
    for secret in ("欧阳娜娜", "13912345678", "8613912345678"):
        assert secret not in dump
    if runtime.redis is not None:
        async for key in runtime.redis.scan_iter(match=runtime.keys.prefix + "*"):
            if await runtime.redis.type(key) != b"string":
                continue  # a conversation's handled marks: hashes of message ids
            value = await runtime.redis.get(key)
            if isinstance(value, bytes):
                assert b"13912345678" not in value and "欧阳娜娜".encode() not in value


async def raw_dump(runtime: Minyi) -> str:
    """Every value of every row of every table, as text, straight from the database."""
    out = []
    async with runtime.db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in (await conn.execute(text(f"SELECT * FROM {table.name}"))).all():
                for value in row:
                    out.append(
                        value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    )
    return "\n".join(out)


async def test_timeline_chain_verifies_and_tampering_breaks_it(runtime: Minyi) -> None:
    code = await filed(runtime)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        await uow.events.append(case, "accepted", "staff:王", {"note": "已受理"})
        await uow.events.append(case, "assigned", "staff:王", {"department": "城管局"})
        await uow.commit()
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        assert (await uow.events.verify(case)).ok
        case_id = case.id

    # The database refuses edits to the timeline ...
    with pytest.raises(Exception, match="append-only"):
        async with runtime.db.engine.begin() as conn:
            await conn.execute(text("UPDATE case_events SET actor = 'x' WHERE seq = 2"))
    # ... so an attacker with DBA rights disables that first; the chain still gives them away.
    async with runtime.db.engine.begin() as conn:
        if runtime.db.is_postgres:
            await conn.execute(
                text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only")
            )
        else:
            await conn.execute(text("DROP TRIGGER case_events_no_update"))
        await conn.execute(
            text("UPDATE case_events SET actor = 'staff:李' WHERE case_id = :id AND seq = 2"),
            {"id": case_id},
        )
        if runtime.db.is_postgres:
            await conn.execute(
                text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only")
            )
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        check = await uow.events.verify(case)
    assert not check.ok and check.broken_at == 2 and "changed" in check.reason


async def test_a_deleted_event_breaks_the_chain(runtime: Minyi) -> None:
    code = await filed(runtime)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for kind in ("accepted", "assigned", "replied"):
            await uow.events.append(case, kind, "staff:王", {})
        await uow.commit()
        events = await uow.events.events(case)
    assert verify_chain(code, events).ok
    check = verify_chain(code, [events[0], *events[2:]])
    assert not check.ok and check.broken_at == 3


async def test_unknown_outbox_type_is_refused(runtime: Minyi) -> None:
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        with pytest.raises(ValueError, match="unknown event type"):
            await uow.outbox.add("case.sumbitted", "XF20261122-7K3M9Q", {})


async def test_a_filing_lands_whole_in_rows_timeline_and_outbox(runtime: Minyi) -> None:
    """What a filing through the engine leaves in the database (its conversation is tested on
    the in-memory store, in test_engine_filing.py)."""
    citizen = Citizen(runtime, sender="whole")
    for answer in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑", "XX区幸福路12号"):
        await citizen.say(answer)
    await citizen.photo("m1")
    await citizen.photo("m2")
    for answer in ("完成", "张三", "138 0013 8000"):
        await citizen.say(answer)
    code = find_case_code(await citizen.say("1"))
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code or "")
        assert case is not None
        assert (case.kind, case.category, case.status, case.channel) == (
            "petition",
            "city",
            "submitted",
            "webchat",
        )
        assert case.accept_due_at is not None and case.accept_due_at > case.created_at
        assert uow.cases.contact(case) == ("张三", "+8613800138000")
        assert [a.ref for a in await uow.cases.attachments(case)] == ["m1", "m2"]
        assert [e.type for e in await uow.events.events(case)] == ["submitted"]
        entries = list(await uow.session.scalars(select(OutboxEntry).order_by(OutboxEntry.seq)))
        assert [e.type for e in entries] == ["case.submitted"]
        data = uow.outbox.data(entries[0])
        assert data["code"] == code
        assert data["contact"] == {"name": "张三", "phone": "+8613800138000"}
        assert len(data["attachments"]) == 2 and data["deadlines"]["accept_by"]


async def test_one_citizen_per_phone_across_filings(runtime: Minyi) -> None:
    await filed(runtime, sender="a")
    await filed(runtime, sender="b")
    async with runtime.db.session() as session:
        citizens = set(await session.scalars(select(Case.citizen_id)))
    assert len(citizens) == 1


async def test_datetimes_come_back_in_utc(runtime: Minyi) -> None:
    code = await filed(runtime)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        assert case.created_at.tzinfo is not None and case.created_at.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - case.created_at) < timedelta(minutes=1)


def test_the_embedded_key_file_is_made_private_once(tmp_path: object) -> None:
    import os
    from pathlib import Path

    from storage.crypto import key_file_for, load_or_create_key_file

    path = key_file_for(Path(str(tmp_path)) / "minyi.db")
    first = load_or_create_key_file(path)
    assert path.name == "minyi.db.key" and os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_key_file(path) == first  # kept, not replaced
