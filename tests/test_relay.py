"""The outbox relay and the reference consumer, against real Redis (and the feed everywhere)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.stream_consumer import StreamConsumer
from storage.models import OutboxEntry
from storage.relay import Relay
from storage.uow import UnitOfWork

from .conftest import Citizen, until_done

ROOT = Path(__file__).resolve().parent.parent


def relay_for(runtime: Minyi, redis: Redis | None = None) -> Relay:
    return Relay(
        runtime.db,
        runtime.cipher,
        redis if redis is not None else runtime.redis,
        runtime.settings.stream,
    )


async def file_cases(runtime: Minyi, n: int, prefix: str = "c") -> list[str]:
    codes = []
    for i in range(n):
        reply = await Citizen(runtime, sender=f"{prefix}{i}").file_a_matter()
        codes.append(reply.split("编号是 ")[1].split("，")[0])
    return codes


async def published_count(runtime: Minyi) -> int:
    async with runtime.db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(OutboxEntry.published_at.is_not(None))
            )
            or 0
        )


@pytest.fixture
def redis_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    from .conftest import settings_for

    return settings_for(request, "postgres+redis", tmp_path)


async def test_relay_feeds_a_consumer_group_exactly_as_the_contract_says(
    redis_settings: Settings,
) -> None:
    async with open_minyi(redis_settings) as runtime:
        assert runtime.redis is not None
        codes = await file_cases(runtime, 3)
        consumer = StreamConsumer(runtime.redis, redis_settings.stream, "office", "c1", block_ms=10)
        await consumer.ensure_group()
        assert await relay_for(runtime).publish_once() == 3
        seen: list[dict[str, Any]] = []

        async def handle(event: dict[str, Any]) -> None:
            seen.append(event)

        assert await consumer.poll(handle) == 3
        assert [e["case"] for e in seen] == codes
        event = seen[0]
        assert event["type"] == "case.submitted" and len(event["id"]) == 36
        assert (
            event["data"]["code"] == codes[0]
            and event["data"]["contact"]["phone"] == "+8613800138000"
        )
        assert {
            "kind",
            "category",
            "description",
            "location",
            "channel",
            "attachments",
            "created_at",
            "deadlines",
        } <= set(event["data"])
        raw = await runtime.redis.xrange(redis_settings.stream)
        assert set(raw[0][1]) == {b"id", b"type", b"case", b"data"}
        assert (await runtime.redis.xpending(redis_settings.stream, "office"))[
            "pending"
        ] == 0  # acknowledged
        assert await consumer.poll(handle) == 0


async def test_redis_down_then_back_loses_nothing_and_doubles_nothing(
    redis_settings: Settings,
) -> None:
    async with open_minyi(redis_settings) as runtime:
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        codes = await file_cases(runtime, 4)
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 - any connection error; rows must stay
                await relay_for(runtime, dead).publish_once()
        await dead.aclose()
        assert await published_count(runtime) == 0
        more = await file_cases(runtime, 2, prefix="later")
        await until_done(relay_for(runtime).publish_once)
        assert runtime.redis is not None
        entries = await runtime.redis.xrange(redis_settings.stream)
        cases = [e[1][b"case"].decode() for e in entries]
        assert sorted(cases) == sorted(codes + more) and len(set(cases)) == len(cases)


async def test_two_relays_at_once_publish_each_row_once(redis_settings: Settings) -> None:
    async with open_minyi(redis_settings) as one, open_minyi(redis_settings) as two:
        await file_cases(one, 12)
        relays = [
            Relay(r.db, r.cipher, r.redis, redis_settings.stream, batch=3) for r in (one, two)
        ]

        async def drain(relay: Relay) -> None:
            for _ in range(40):
                await relay.publish_once()
                await asyncio.sleep(0)

        await asyncio.gather(drain(relays[0]), drain(relays[1]))
        assert one.redis is not None
        ids = [e[1][b"id"] for e in await one.redis.xrange(redis_settings.stream)]
        assert len(ids) == 12 and len(set(ids)) == 12
        async with UnitOfWork(one.db, one.cipher) as uow:
            positions = [e.position for e in await uow.outbox.after(0, 100)]
        assert positions == list(range(1, 13))


async def queue_events(runtime: Minyi, per_case: int, cases: int) -> list[str]:
    """`per_case` events for each of `cases` cases, interleaved, with personal data in some;
    their ids in insert order."""
    ids = []
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        for n in range(per_case):
            for c in range(cases):
                private = {"contact": {"phone": "+8613800138000"}} if n == 0 else None
                entry = await uow.outbox.add(
                    "case.updated", f"XF20261130-{c:06d}", {"n": n, "note": "已受理\n\x1f"}, private
                )
                ids.append(entry.id)
        await uow.commit()
    return ids


async def test_two_relays_with_big_batches_publish_each_row_once_in_order(
    redis_settings: Settings,
) -> None:
    async with open_minyi(redis_settings) as one, open_minyi(redis_settings) as two:
        ids = await queue_events(one, 30, 20)
        relays = [
            Relay(r.db, r.cipher, r.redis, redis_settings.stream, batch=70) for r in (one, two)
        ]

        async def drain(relay: Relay) -> None:
            for _ in range(40):
                await relay.publish_once()
                await asyncio.sleep(0)

        await asyncio.gather(drain(relays[0]), drain(relays[1]))
        assert one.redis is not None
        entries = [e[1] for e in await one.redis.xrange(redis_settings.stream)]
        assert [e[b"id"].decode() for e in entries] == ids  # once each, in commit order
        data = [json.loads(e[b"data"]) for e in entries]
        assert data[0]["contact"] == {"phone": "+8613800138000"} and "contact" not in data[-1]
        assert data[0]["note"] == "已受理\n\x1f" and b"\xe5\xb7\xb2" in entries[0][b"data"]
        async with UnitOfWork(one.db, one.cipher) as uow:
            published = [(e.id, e.position) for e in await uow.outbox.after(0, 1000)]
        assert published == [(i, n) for n, i in enumerate(ids, start=1)]


async def test_a_batch_cut_between_the_stream_and_the_commit_goes_out_again_in_order(
    redis_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once: a relay that dies after the stream took a batch and before the rows were
    marked leaves them unpublished; the next run sends them again, in the same order, and a
    consumer that skips ids it has seen (as the contract says) gets each event once, in order."""
    async with open_minyi(redis_settings) as runtime:
        ids = await queue_events(runtime, 5, 4)
        relay = Relay(runtime.db, runtime.cipher, runtime.redis, redis_settings.stream, batch=8)
        import storage.relay

        monkeypatch.setattr(storage.relay, "_MARK_PG", text("SELECT no_such_column FROM outbox"))
        with pytest.raises(DBAPIError):
            await relay.publish_once()
        monkeypatch.undo()
        assert await published_count(runtime) == 0
        await until_done(relay.publish_once)
        assert runtime.redis is not None
        sent = [e[1][b"id"].decode() for e in await runtime.redis.xrange(redis_settings.stream)]
        assert sent == ids[:8] + ids  # the cut batch twice: at least once
        once = list(dict.fromkeys(sent))  # what a consumer deduplicating on id sees
        assert once == ids
        assert await published_count(runtime) == len(ids)


async def test_a_dead_consumers_entries_are_claimed_by_another(redis_settings: Settings) -> None:
    async with open_minyi(redis_settings) as runtime:
        assert runtime.redis is not None
        await file_cases(runtime, 2)
        await relay_for(runtime).publish_once()
        stream = redis_settings.stream
        dying = StreamConsumer(
            runtime.redis, stream, "office", "dying", block_ms=10, claim_idle_ms=50
        )
        await dying.ensure_group()

        async def crash(event: dict[str, Any]) -> None:
            raise RuntimeError("killed before acknowledging")

        await dying.poll(crash)
        assert (await runtime.redis.xpending(stream, "office"))["pending"] == 2
        await asyncio.sleep(0.1)  # the dead consumer's entries go idle
        survivor = StreamConsumer(
            runtime.redis, stream, "office", "survivor", block_ms=10, claim_idle_ms=50
        )
        seen: list[str] = []

        async def keep(event: dict[str, Any]) -> None:
            seen.append(event["case"])

        await survivor.poll(keep)
        assert len(seen) == 2
        assert (await runtime.redis.xpending(stream, "office"))["pending"] == 0


async def test_poison_entries_go_to_the_dead_letter_stream(redis_settings: Settings) -> None:
    async with open_minyi(redis_settings) as runtime:
        assert runtime.redis is not None
        await file_cases(runtime, 1)
        await relay_for(runtime).publish_once()
        stream = redis_settings.stream
        consumer = StreamConsumer(
            runtime.redis, stream, "office", "c", block_ms=10, claim_idle_ms=1, max_deliveries=3
        )
        await consumer.ensure_group()

        async def broken(event: dict[str, Any]) -> None:
            raise ValueError("cannot store this one")

        for _ in range(6):
            await consumer.poll(broken)
            await asyncio.sleep(0.01)
        dead = await runtime.redis.xrange(stream + ":dead")
        assert (
            len(dead) == 1
            and b"ValueError" in dead[0][1][b"error"]
            and dead[0][1][b"group"] == b"office"
        )
        assert (await runtime.redis.xpending(stream, "office"))["pending"] == 0


async def test_trimming_keeps_what_a_group_has_not_acknowledged(redis_settings: Settings) -> None:
    from datetime import timedelta

    async with open_minyi(redis_settings) as runtime:
        assert runtime.redis is not None
        stream = redis_settings.stream
        await file_cases(runtime, 3)
        relay = relay_for(runtime)
        await relay.publish_once()
        slow = StreamConsumer(runtime.redis, stream, "slow", "s", block_ms=10, claim_idle_ms=1)
        fast = StreamConsumer(runtime.redis, stream, "fast", "f", block_ms=10)
        await slow.ensure_group()
        await fast.ensure_group()

        async def ok(event: dict[str, Any]) -> None:
            return None

        async def fail(event: dict[str, Any]) -> None:
            raise RuntimeError("still working on it")

        await fast.poll(ok)
        await slow.poll(fail)  # all three pending at "slow"
        await relay.trim(timedelta(0))
        assert await runtime.redis.xlen(stream) == 3  # nothing trimmed: "slow" holds them
        await asyncio.sleep(0.01)
        await slow.poll(ok)  # failed entries come back after claim_idle, and are handled now
        await relay.trim(timedelta(0))
        assert await runtime.redis.xlen(stream) == 0
        await file_cases(runtime, 1, prefix="new")
        await relay.publish_once()
        await relay.trim(timedelta(0))
        assert await runtime.redis.xlen(stream) == 1  # not yet read by either group: kept


@pytest.fixture
def postgres_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    from .conftest import settings_for

    return settings_for(request, "postgres", tmp_path)


async def test_a_late_committing_row_is_not_skipped_by_the_feed(
    postgres_settings: Settings,
) -> None:
    """Insert order is not commit order on PostgreSQL: a row that took an earlier seq but commits
    after later rows were published and read must still reach a poller (SQLite serialises writers,
    so the race does not exist there)."""
    async with open_minyi(postgres_settings) as runtime:
        relay = relay_for(runtime)
        async with UnitOfWork(runtime.db, runtime.cipher) as late:
            early = await late.outbox.add("handoff.requested", "", {"reason": "late"})
            await file_cases(runtime, 1)  # takes a later seq and commits first
            assert await relay.publish_once() == 1
            async with UnitOfWork(runtime.db, runtime.cipher) as poller:
                seen = [
                    (e.position, e.data.get("reason")) for e in await poller.outbox.after(0, 10)
                ]
            assert len(seen) == 1 and seen[0][1] is None
            await late.commit()
        assert await relay.publish_once() == 1
        async with UnitOfWork(runtime.db, runtime.cipher) as poller:
            later = [
                (e.seq, e.data.get("reason"))
                for e in await poller.outbox.after(seen[0][0] or 0, 10)
            ]
        assert later == [(early.seq, "late")]


def test_stream_entry_fields_are_text() -> None:
    from storage.relay import stream_fields

    row = OutboxEntry(id="u-1", type="case.rated", case_code="XF20261122-7K3M9Q", data={})
    fields = stream_fields(row, {"score": 1, "label": "满意"})
    assert fields == {
        "id": "u-1",
        "type": "case.rated",
        "case": "XF20261122-7K3M9Q",
        "data": json.dumps(
            {"score": 1, "label": "满意"}, ensure_ascii=False, separators=(",", ":")
        ),
    }


async def test_backoffice_tail_prints_json_lines_and_stops_on_sigterm(
    redis_settings: Settings,
) -> None:
    import os
    import signal
    import sys

    async with open_minyi(redis_settings) as runtime:
        codes = await file_cases(runtime, 2)
        await relay_for(runtime).publish_once()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        MINYI_DATABASE_URL=redis_settings.database_url,
        MINYI_PII_KEY=redis_settings.pii_key or "",
        MINYI_REDIS_URL=redis_settings.redis_url or "",
        MINYI_STREAM=redis_settings.stream,
        MINYI_LOG_LEVEL="WARNING",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backoffice",
        "tail",
        "--group",
        "archive",
        "--consumer",
        "t1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = [json.loads(await asyncio.wait_for(process.stdout.readline(), 30)) for _ in codes]
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 30)
    assert process.stderr is not None
    assert code == 0, (await process.stderr.read()).decode()[-2000:]
    assert [line["case"] for line in lines] == codes and lines[0]["type"] == "case.submitted"
    assert lines[0]["data"]["contact"]["name"] == "张三"
    redis = Redis.from_url(redis_settings.redis_url or "")
    assert (await redis.xpending(redis_settings.stream, "archive"))["pending"] == 0
    await redis.aclose()
