"""Redis bytes per idle conversation, measured with MEMORY USAGE.

    python benchmarks/redis_memory.py [--citizens 200] [--window 60]

Citizens walk the whole filing walk on PostgreSQL + Redis (a throwaway database and key prefix)
through the real engine, then stop. Printed twice, by kind of key, per conversation, also for a
citizen who stopped half-way through the form: right after the walk, while the replies of each
message are still kept for its re-delivery (`conv` state, `handled` marks, `seen` replies), and
once that window (`--window` seconds, standing in for `MINYI_REDELIVERY_SECONDS`, 15 minutes)
has passed, when an idle conversation is its state and the marks of its messages of the day.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis
from throwaway import database

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.messages import Inbound

REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
WALK = (
    "我要反映",
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "XX区幸福路12号幸福小区东门",
    "跳过",
    "张三",
    "139{n:08d}",
    "1",
    "菜单",
    "进度查询",
)
HALF_WAY = 4  # stopped after the address


async def usage(redis: Redis, prefix: str, marker: str) -> dict[str, int]:
    """Bytes by kind of key (the part of the key after the prefix, up to the first colon)."""
    kinds: dict[str, int] = defaultdict(int)
    async for key in redis.scan_iter(match=f"{prefix}*{marker}*", count=1000):
        kind = key.decode()[len(prefix) :].split(":", 1)[0]
        kinds[kind] += int(await redis.memory_usage(key, samples=0) or 0)
    return dict(kinds)


def report(when: str, who: str, steps: int, citizens: int, kinds: dict[str, int]) -> None:
    total = sum(kinds.values()) / citizens
    parts = ", ".join(f"{k} {v / citizens:,.0f}" for k, v in sorted(kinds.items()))
    print(f"{when:>6} {who:>5} ({steps} messages): {total:,.0f} bytes per conversation ({parts})")


async def main(citizens: int, window: int) -> None:
    async with database("postgres") as url:
        prefix = f"minyi-bench:{secrets.token_hex(4)}:"
        settings = Settings(database_url=url, pii_key=KEY).replace(
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            stream=prefix + "events",
            redelivery_seconds=window,
        )
        redis = Redis.from_url(REDIS_URL)
        try:
            started = time.monotonic()
            async with open_minyi(settings) as runtime:
                for n in range(citizens):
                    for i, text in enumerate(WALK):
                        await runtime.engine.handle(
                            Inbound(
                                channel="wechat",
                                sender=f"whole{n:06d}",
                                text=text.format(n=n),
                                message_id=f"w{n}-{i}",
                            )
                        )
                    for i, text in enumerate(WALK[:HALF_WAY]):
                        await runtime.engine.handle(
                            Inbound(
                                channel="wechat",
                                sender=f"half{n:06d}",
                                text=text.format(n=n),
                                message_id=f"h{n}-{i}",
                            )
                        )
            walked = time.monotonic()
            walks = (("whole", len(WALK)), ("half", HALF_WAY))
            for who, steps in walks:
                report("walked", who, steps, citizens, await usage(redis, prefix, who))
            if walked - started > window:
                print(f"(the walk took longer than --window {window}: some replies had gone)")
            await asyncio.sleep(max(0.0, walked + window + 1 - time.monotonic()))
            for who, steps in walks:
                report("idle", who, steps, citizens, await usage(redis, prefix, who))
        finally:
            async for key in redis.scan_iter(match=prefix + "*", count=1000):
                await redis.delete(key)
            await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--window", type=int, default=60, help="re-delivery window, seconds")
    args = parser.parse_args()
    asyncio.run(main(args.citizens, args.window))
