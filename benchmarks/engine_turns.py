"""Engine throughput: N simulated citizens through complete filings, per backend.

    python benchmarks/engine_turns.py [--citizens 200] [--concurrency 50] [--backends sqlite,postgres+redis]

Each citizen sends the eight messages of a filing (menu choice, category, description,
location, skip photos, name, mobile, submit) through the real engine and storage, as a channel
would. Prints turns per second and p50/p99/max per turn. PostgreSQL runs in a throwaway
database (MINYI_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test),
Redis under a throwaway key prefix (MINYI_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis
from throwaway import database

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.messages import Inbound

REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
FILING = (
    "1",
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "幸福路12号幸福小区东门",
    "跳过",
    "张三",
    "{phone}",  # each citizen their own number, as in life: one shared number would make
    "1",  # every submit wait on that citizen's row
)


@asynccontextmanager
async def backend(name: str) -> AsyncIterator[Settings]:
    async with database("sqlite" if name == "sqlite" else "postgres") as url:
        settings = Settings(database_url=url, pii_key=KEY)
        if name != "postgres+redis":
            yield settings
            return
        prefix = f"minyi-bench:{secrets.token_hex(4)}:"
        yield settings.replace(redis_url=REDIS_URL, redis_prefix=prefix, stream=prefix + "events")
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await redis.aclose()


async def run(name: str, citizens: int, concurrency: int) -> dict[str, float]:
    async with backend(name) as settings, open_minyi(settings) as runtime:
        latencies: list[float] = []
        gate = asyncio.Semaphore(concurrency)

        async def citizen(n: int) -> None:
            async with gate:
                for i, message in enumerate(FILING):
                    text = message.format(phone=f"139{n % 100_000_000:08d}")
                    inbound = Inbound(
                        channel="bench", sender=f"c{n}", text=text, message_id=f"{n}-{i}"
                    )
                    started = time.perf_counter()
                    await runtime.engine.handle(inbound)
                    latencies.append(time.perf_counter() - started)

        await citizen(-1)  # warm up connections and caches
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(citizen(n) for n in range(citizens)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "turns": len(ordered),
        "turns_per_s": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres,postgres+redis")
    args = parser.parse_args()
    print(f"{args.citizens} citizens × {len(FILING)} turns, {args.concurrency} at a time")
    print(f"{'backend':<16}{'turns':>8}{'turns/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in args.backends.split(","):
        r = await run(name, args.citizens, args.concurrency)
        print(
            f"{name:<16}{r['turns']:>8}{r['turns_per_s']:>10.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
