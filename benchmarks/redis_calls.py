"""What one Redis script call costs the client, by the way redis-py asyncio is asked to make it.

    python benchmarks/redis_calls.py                 # 7 rounds of 4,000 calls per way
    python benchmarks/redis_calls.py --rounds 15

A turn of a conversation runs a few small Lua scripts (storage/scripts.py); at a few hundred
turns a second the web process is CPU-bound in Python, and much of that is redis-py's own
machinery around each call. This runs the same tiny script (the rate-limit hit's shape: one GET,
one INCR, one PEXPIRE) in each way, against each pool, with and without the client's Retry, and
a bare GET as the baseline of what any command costs. Figures are the client's CPU per call (the
process's CPU time over the calls, which is what a CPU-bound server pays) and the calls per second
with 32 calls in flight; read them against the GET's, the machine being shared.

Needs Redis at MINYI_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0); keys under
`minyi-bench:calls:` are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.redis_connect import QueueingPool
from storage.scripts import Script

REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = "minyi-bench:calls:"
HIT = """
local prior = redis.call('GET', KEYS[2])
if prior then return tonumber(prior) end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""
KEYS = (PREFIX + "{a}:count", PREFIX + "{a}:once")
ARGS: tuple[int, str] = (60_000, "")
AT_ONCE = 32


POOLS: dict[str, type[ConnectionPool]] = {
    "blocking (64)": BlockingConnectionPool,  # redis-py's waiting pool
    "plain (64)": ConnectionPool,  # refuses past its size
    "queueing (64), Minyi's": QueueingPool,  # storage/redis_connect.py
}


def client(pool: str, retry: bool) -> Redis:
    """A client on one of POOLS, with the client's default Retry or none."""
    options: dict[str, object] = {"max_connections": 64}
    if pool != "plain (64)":
        options["timeout"] = 5
    if not retry:
        options["retry"] = Retry(NoBackoff(), 0)
    return Redis.from_pool(POOLS[pool].from_url(REDIS_URL, **options))


def ways(redis: Redis) -> dict[str, Callable[[], Awaitable[object]]]:
    registered = redis.register_script(HIT)
    ours = Script(redis, HIT)
    sha, n = registered.sha, len(KEYS)
    keys, args = list(KEYS), list[int | str](ARGS)
    return {
        "GET (baseline)": lambda: redis.get(KEYS[0]),
        "Script.__call__": lambda: registered(keys=keys, args=args),
        "redis.evalsha": lambda: redis.evalsha(sha, n, *keys, *args),
        "execute_command": lambda: redis.execute_command("EVALSHA", sha, n, *keys, *args),
        "storage.scripts.Script": lambda: ours(keys, args),
    }


async def timed(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """(CPU µs per call, calls per second) for `calls` calls, AT_ONCE in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // AT_ONCE) for _ in range(AT_ONCE)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = calls // AT_ONCE * AT_ONCE
    return cpu / done * 1e6, done / wall


async def main(args: argparse.Namespace) -> None:
    clients = {(pool, retry): client(pool, retry) for pool in POOLS for retry in (True, False)}
    calls = {
        (*setup, name): way for setup, redis in clients.items() for name, way in ways(redis).items()
    }
    best: dict[tuple[str, bool, str], tuple[float, float]] = {}
    try:
        for call in calls.values():  # connections open, scripts loaded
            await timed(call, AT_ONCE * 10)
        # Round after round, each way in turn; the best round of each is kept, the least
        # disturbed by whatever else the machine runs.
        for _ in range(args.rounds):
            for what, call in calls.items():
                cpu, rate = await timed(call, args.calls)
                old = best.get(what)
                best[what] = (min(cpu, old[0]), max(rate, old[1])) if old else (cpu, rate)
    finally:
        for redis in clients.values():
            await redis.delete(*KEYS)
            await redis.aclose()
    print(
        f"{args.calls} calls per way and round, {AT_ONCE} in flight, best of {args.rounds} rounds:"
        " the client's CPU per call (lower is better) and calls per second"
    )
    print("| pool | client Retry | way | CPU µs per call | ratio to GET | calls/s |")
    print("|---|---|---|---:|---:|---:|")
    for (pool, retry, name), (cpu, rate) in best.items():
        baseline = best[(pool, retry, "GET (baseline)")][0]
        print(
            f"| {pool} | {'default' if retry else 'none'} "
            f"| {name} | {cpu:.1f} | {cpu / baseline:.2f} | {rate:,.0f} |"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4_000)
    parser.add_argument("--rounds", type=int, default=7)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
