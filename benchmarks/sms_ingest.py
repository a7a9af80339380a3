"""Alibaba-style SMS reply pushes, 100 replies each, over loopback against the whole app.

Each push goes through what a real one does: the secret-path guard, body limit, JSON parsing
and validation, a log line per reply at INFO with phones masked (written to /dev/null), and a
handler that reads every reply with the survey parser. Client and server share one process and
event loop, so the server alone would go faster than printed.

    python benchmarks/sms_ingest.py [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import logs
from bot.app import create_app
from bot.settings import Settings
from bot.sms import build_sms
from channels.sms import SmsReply
from conversation.survey_reply import read_reply

SECRET = "bench-path-secret-0123456789"
BATCH = 100
REPLIES = (
    "1",
    "满意 7K3M",
    "2 处理得还行",
    "不满意，一直没人联系我",
    "TD",
    "３。",
    "【9Q2B】1",
    "谢谢",
)


def batch(number: int) -> bytes:
    """One push of BATCH distinct replies, shaped like Alibaba's SmsUp array."""
    return json.dumps(
        [
            {
                "phone_number": f"138{(number * BATCH + i) % 100_000_000:08d}",
                "send_time": "2026-11-22 10:15:32",
                "content": REPLIES[i % len(REPLIES)],
                "sign_name": "民意热线",
                "dest_code": "8371",
                "sequence_id": number * BATCH + i,
            }
            for i in range(BATCH)
        ],
        ensure_ascii=False,
    ).encode()


def log_like_production(sink: TextIO) -> None:
    """Logging as `minyi serve` sets it up (INFO, phones masked), written to `sink`."""
    logs.configure("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


async def main(seconds: float, concurrency: int) -> None:
    outcomes: Counter[str] = Counter()

    async def on_reply(reply: SmsReply) -> None:
        outcomes[type(read_reply(reply.text, 3)).__name__] += 1

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            pii_key="k" * 43,
            sms_provider="aliyun",
            sms_access_key_id="LTAI5tBench",
            sms_access_key_secret="bench",
            sms_sign_name="民意热线",
            sms_template_notice="SMS_1",
            sms_webhook_secret=SECRET,
        )
        channel = build_sms(settings, on_reply=on_reply)
        assert channel is not None
        runner = web.AppRunner(create_app(settings, workers=False, channels={"sms": channel}))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/sms/aliyun/inbound/{SECRET}"
        bodies = [batch(n) for n in range(64)]
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def client(session: aiohttp.ClientSession, offset: int) -> None:
            n = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=bodies[n % len(bodies)]) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                latencies.append(time.perf_counter() - started)
                n += concurrency

        try:
            async with aiohttp.ClientSession() as session:
                started = time.perf_counter()
                await asyncio.gather(*(client(session, i) for i in range(concurrency)))
                elapsed = time.perf_counter() - started
        finally:
            await runner.cleanup()

    pushes = len(latencies)
    replies = sum(outcomes.values())
    assert replies == pushes * BATCH
    print(
        f"{pushes} pushes of {BATCH} replies in {elapsed:.1f} s, {concurrency} concurrent clients"
    )
    print(f"pushes/s:  {pushes / elapsed:8.1f}")
    print(f"replies/s: {replies / elapsed:8.0f}")
    print(
        f"per push:  median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {statistics.quantiles(latencies, n=20)[-1] * 1000:.1f} ms"
    )
    print("parsed as: " + ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull:
        log_like_production(devnull)
        asyncio.run(main(args.seconds, args.concurrency))
