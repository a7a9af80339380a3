"""Form steps through the whole inbound pipeline on PostgreSQL + Redis: CPU and Redis calls each.

    python benchmarks/form_steps.py                  # 600 citizens, 32 at a time, 2 rounds
    python benchmarks/form_steps.py --rounds 3 --citizens 1000

Each citizen sends the six form steps before the submit (我要反映, a category, the description,
the address, 跳过 photos, the name) through `Minyi.handle` — the sender's rate limit, the
engine, the Redis conversation store — as a channel would, without HTTP or WeChat's crypto.
A form step runs no SQL, so what it costs is Python and Redis. Printed per step: this
process's CPU, the Redis commands the server ran (INFO commandstats: EVALSHA is a client round
trip, the others run inside the scripts) and steps a second. The baseline, in the same run, is
a bare Redis GET's client CPU: a step's cost reads as so many GETs.

Redis is a server of the benchmark's own (`redis-server` on a free port, nothing saved), so
the counts are this process's alone; PostgreSQL at MINYI_BENCH_POSTGRES_URL (throwaway database).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_turns import FILING
from throwaway import database

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.messages import Inbound

STEPS = FILING[:6]  # the form up to the mobile: steps that touch only the conversation
AT_ONCE = 32


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("needs redis-server (Debian: apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", folder]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


async def get_cpu(url: str, calls: int = 4000) -> float:
    """A bare GET's client CPU in µs, AT_ONCE in flight (the baseline)."""
    redis = Redis.from_url(url)
    try:

        async def worker() -> None:
            for _ in range(calls // AT_ONCE):
                await redis.get("minyi-bench:get")

        await worker()
        cpu = time.process_time()
        await asyncio.gather(*(worker() for _ in range(AT_ONCE)))
        return (time.process_time() - cpu) / (calls // AT_ONCE * AT_ONCE) * 1e6
    finally:
        await redis.aclose()


async def steps(url: str, citizens: int) -> tuple[float, float, dict[str, float]]:
    """(CPU µs per step, steps per second, Redis commands per step)."""
    prefix = f"minyi-bench:{secrets.token_hex(4)}:"
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    async with database("postgres") as database_url:
        settings = Settings(
            database_url=database_url,
            pii_key=key,
            redis_url=url,
            redis_prefix=prefix,
            stream=prefix + "events",
            rate_sender=(100_000, 60),  # counted, never reached
        )
        redis = Redis.from_url(url)
        async with open_minyi(settings) as minyi:
            gate = asyncio.Semaphore(AT_ONCE)

            async def citizen(n: int) -> None:
                async with gate:
                    for i, text in enumerate(STEPS):
                        sender = f"o{n:07d}"
                        await minyi.handle(
                            Inbound(channel="wechat", sender=sender, text=text, message_id=f"{i}")
                        )

            await asyncio.gather(*(citizen(-n) for n in range(1, AT_ONCE + 1)))  # warm
            await redis.config_resetstat()
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(citizen(n) for n in range(citizens)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stats = await redis.info("commandstats")
        await redis.aclose()
    done = citizens * len(STEPS)
    counts = {
        name.removeprefix("cmdstat_"): value["calls"] / done
        for name, value in stats.items()
        if name not in ("cmdstat_config|resetstat", "cmdstat_info")
    }
    return cpu / done * 1e6, done / wall, counts


async def main(args: argparse.Namespace) -> None:
    with own_redis() as url:
        for round_ in range(1, args.rounds + 1):
            get = await get_cpu(url)
            cpu, rate, counts = await steps(url, args.citizens)
            calls = ", ".join(f"{n} {c:.2f}" for n, c in sorted(counts.items(), key=lambda i: i[0]))
            print(
                f"round {round_}: {cpu:.0f} µs CPU per form step = {cpu / get:.1f} bare GETs "
                f"({get:.0f} µs each); {rate:,.0f} steps/s; EVALSHA per step "
                f"{counts.get('evalsha', 0):.2f}; Redis commands per step: {calls}"
            )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
