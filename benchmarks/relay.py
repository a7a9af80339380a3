"""Outbox → Redis stream: relay throughput by batch size, and commit → XREADGROUP latency.

    python benchmarks/relay.py [--events 20000] [--latency-samples 300]

Runs on PostgreSQL (a throwaway database) and Redis (a throwaway stream), as in production.
Throughput: a backlog of `--events` outbox rows is published by one relay with each batch size.
Latency: events are committed one by one while the relay loop runs as the worker runs it
(woken on commit, as `Minyi.kick` does) and a consumer group blocks on XREADGROUP; each
event's time from commit to arrival is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis
from sqlalchemy import insert, text
from throwaway import database

from bot.backoffice.stream_consumer import StreamConsumer
from storage.crypto import PiiCipher
from storage.db import Database
from storage.models import OutboxEntry
from storage.relay import Relay
from storage.uow import UnitOfWork

REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATA = {
    "code": "XF20261122-7K3M9Q",
    "status": "accepted",
    "event": {"type": "accepted", "note": "已受理" * 10},
}


async def backlog(db: Database, n: int) -> None:
    async with db.engine.begin() as conn:
        for start in range(0, n, 5000):
            rows = [
                {
                    "id": f"{secrets.token_hex(16)}",
                    "type": "case.updated",
                    "case_code": "XF20261122-7K3M9Q",
                    "data": DATA,
                    "attempts": 0,
                }
                for _ in range(min(5000, n - start))
            ]
            await conn.execute(insert(OutboxEntry), rows)


async def throughput(
    db: Database, cipher: PiiCipher, redis: Redis, stream: str, events: int, batch: int
) -> float:
    await redis.delete(stream)
    async with db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox"))
    await backlog(db, events)
    relay = Relay(db, cipher, redis, stream, batch=batch)
    started = time.perf_counter()
    while await relay.publish_once():
        pass
    return events / (time.perf_counter() - started)


async def latency(
    db: Database, cipher: PiiCipher, redis: Redis, stream: str, samples: int
) -> list[float]:
    relay = Relay(db, cipher, redis, stream)
    consumer = StreamConsumer(redis, stream, "bench", "c1", block_ms=1000)
    await consumer.ensure_group()
    wake = asyncio.Event()
    arrivals: dict[str, float] = {}
    done = asyncio.Event()

    async def relay_loop() -> None:
        while not done.is_set():
            if not await relay.publish_once():
                with contextlib.suppress(TimeoutError):  # woken by a commit, or a second passed
                    await asyncio.wait_for(wake.wait(), 1.0)
                wake.clear()

    async def on_event(event: dict[str, object]) -> None:
        arrivals[str(event["id"])] = time.perf_counter()

    async def consume() -> None:
        while len(arrivals) < samples:
            await consumer.poll(on_event)

    committed: dict[str, float] = {}
    tasks = [asyncio.create_task(relay_loop()), asyncio.create_task(consume())]
    for _ in range(samples):
        async with UnitOfWork(db, cipher) as uow:
            entry = await uow.outbox.add("case.updated", "XF20261122-7K3M9Q", DATA)
            await uow.commit()
        committed[entry.id] = time.perf_counter()
        wake.set()
        await asyncio.sleep(0.005)  # events a few milliseconds apart, like a busy office
    await asyncio.wait_for(tasks[1], 30)
    done.set()
    wake.set()
    await tasks[0]
    return [(arrivals[i] - committed[i]) * 1000 for i in committed]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    redis = Redis.from_url(REDIS_URL)
    stream = f"minyi-bench:{secrets.token_hex(4)}:events"
    async with database("postgres") as url:
        db = Database(url)
        try:
            cipher = PiiCipher(secrets.token_bytes(32))
            print(f"throughput, {args.events} events in the outbox, one relay:")
            print(f"{'batch':>8}{'events/s':>12}")
            for batch in (1, 10, 100, 200, 500):
                events = args.events if batch > 1 else args.events // 10
                print(
                    f"{batch:>8}{await throughput(db, cipher, redis, stream, events, batch):>12.0f}"
                )
            await redis.delete(stream)
            samples = sorted(await latency(db, cipher, redis, stream, args.latency_samples))
            print(
                f"\ncommit → XREADGROUP, {len(samples)} events: p50 {statistics.median(samples):.1f} ms, "
                f"p99 {samples[int(len(samples) * 0.99) - 1]:.1f} ms, max {samples[-1]:.1f} ms"
            )
        finally:
            await redis.delete(stream)
            await redis.aclose()
            await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
