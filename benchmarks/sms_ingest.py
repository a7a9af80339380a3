"""SMS rating replies end to end: Alibaba-style pushes of 100, parsed, matched, recorded, published.

    python benchmarks/sms_ingest.py [--replies 5000] [--concurrency 4] [--backends sqlite,postgres]

Closed cases with open surveys are prepared first (one per phone). Each push then goes through
what a real one does: the secret-path guard, the body limit and validation, production logging
(phones masked, to /dev/null), and its replies kept in the SMS inbox in one transaction, which
is when the push is acknowledged ("ack" columns). The app's own `sms-replies` job, woken by
that commit, works them through the survey handler: the re-delivery check, the reply parser,
the open survey of that phone, the rating on the case, its timeline entry and `case.rated` in
the outbox, the plain ratings of a lease in one transaction (docs/sms.md). "replies/s" is from
the first push until every case is rated. Client and server share one process.

`--notices-after` keeps the notifier out while the ratings come in, then runs it alone
(`Notifier.run_once` until nothing is left) and prints its notifications/s and CPU per
notification: the notices' own cost, apart from the ratings'.

The app's start-up heap is frozen once it has started, as `minyi serve` and `minyi worker` do
(bot/app/heap.py): the objects of the startup — jieba's dictionary, the place names, the
modules, some 230,000 — leave the garbage collector's oldest generation, whose full collections
otherwise walk them all, about 0.13 s each, three or so per 5,000 ratings. `--no-gc-freeze`
leaves them there, to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throwaway import database

from bot.app import logs
from bot.app.appkeys import MINYI
from bot.app.heap import freeze_startup_heap
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi
from conversation.codes import new_case_code, short_reference
from storage.models import Case, Citizen, Identity, Notification, OutboxEntry, Survey, utcnow

SECRET = "bench-path-secret-0123456789"
BATCH = 100
KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def phone(n: int) -> str:
    return f"+86138{n:08d}"


async def prepare(runtime: Minyi, count: int) -> list[str]:
    """`count` closed cases, each with an open survey on its own phone; their short references."""
    cipher, now = runtime.cipher, utcnow()
    refs = []
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            insert(Identity),
            [
                {
                    "id": n + 1,
                    "channel": "webchat",
                    "external_id": f"bench-{n}",
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
                    "id": n + 1,
                    "phone_hash": cipher.phone_hash(phone(n)),
                    "phone_enc": cipher.encrypt(phone(n), "phone"),
                    "created_at": now,
                }
                for n in range(count)
            ],
        )
        cases: list[dict[str, object]] = []
        codes: set[str] = set()
        while len(codes) < count:
            codes.add(new_case_code(date(2026, 11, 22)))
        for n, code in enumerate(sorted(codes)):
            refs.append(short_reference(code))
            cases.append(
                {
                    "id": n + 1,
                    "code": code,
                    "origin": f"bench:{n}",
                    "kind": "petition",
                    "category": "city",
                    "description": "路灯坏了",
                    "location_text": "幸福路",
                    "channel": "webchat",
                    "identity_id": n + 1,
                    "citizen_id": n + 1,
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
                    # Compared with the person's earlier matters when filed, long before its
                    # survey: left unset, the repeat watch would compare 200 of them every 30 s
                    # (jieba, on the event loop), seconds that have nothing to do with SMS.
                    "repeat_checked_at": now,
                    "extended_days": 0,
                    "extension_reason": "",
                    "stages": [],
                }
            )
        await conn.execute(insert(Case), cases)
        await conn.execute(
            insert(Survey),
            [
                {
                    "case_id": n + 1,
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
    return refs


def push(first: int, refs: list[str]) -> bytes:
    """One Alibaba SmsUp array: BATCH ratings, each from the phone of its own survey."""
    return json.dumps(
        [
            {
                "phone_number": phone(n)[3:],
                "send_time": "2026-11-22 10:15:32",
                "content": f"{1 + n % 3} {refs[n]}",
                "sign_name": "民意热线",
                "dest_code": "8371",
                "sequence_id": n,
            }
            for n in range(first, first + BATCH)
        ],
        ensure_ascii=False,
    ).encode()


def stand_in(port: int) -> None:
    """Alibaba's SendSms (OK, with a BizId) and a staff webhook, in their own process."""
    sent = 0

    async def send_sms(request: web.Request) -> web.Response:
        nonlocal sent
        await request.read()
        sent += 1
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": f"{sent:012d}^0"})

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/", send_sms)
    app.router.add_post("/hook", hook)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_like_production(sink: TextIO) -> None:
    logs.configure("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


async def run(
    backend: str,
    replies: int,
    concurrency: int,
    provider: str,
    off: frozenset[str],
    notices_after: bool = False,
    gc_freeze: bool = False,
) -> None:
    async with database(backend) as url:
        settings = Settings(database_url=url, pii_key=KEY).replace(
            sms_api_base=provider,
            staff_webhook_url=f"{provider}/hook",
            staff_webhook_secret="bench-staff-webhook-secret",
            sms_provider="aliyun",
            sms_access_key_id="LTAI5tBench",
            sms_access_key_secret="bench",
            sms_sign_name="民意热线",
            sms_template_notice="SMS_1",
            sms_webhook_secret=SECRET,
        )
        app = create_app(settings, workers=True)
        runtime = app[MINYI]
        left_out = off | {"notifier"} if notices_after else off
        runtime.jobs = tuple(job for job in runtime.jobs if job.name not in left_out)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        if gc_freeze:
            freeze_startup_heap()
        host, port = runner.addresses[0][:2]
        url_in = f"http://{host}:{port}/sms/aliyun/inbound/{SECRET}"
        try:
            refs = await prepare(runtime, replies)
            bodies = [push(first, refs) for first in range(0, replies, BATCH)]
            latencies: list[float] = []
            queue = list(range(len(bodies)))

            async def client(session: aiohttp.ClientSession) -> None:
                while queue:
                    body = bodies[queue.pop()]
                    started = time.perf_counter()
                    async with session.post(url_in, data=body) as response:
                        assert response.status == 200, await response.text()
                    latencies.append(time.perf_counter() - started)

            async with aiohttp.ClientSession() as session:
                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(client(session) for _ in range(concurrency)))
                acknowledged = time.perf_counter() - started
            while await runtime.sms_inbox.waiting():  # noqa: ASYNC110 (the job works them through)
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            while "notifier" not in left_out and await unsent(runtime):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            notified, cpu = time.perf_counter() - started, time.process_time() - cpu
            if notices_after:
                pending = await unsent(runtime)
                began, spent = time.perf_counter(), time.process_time()
                while await runtime.notifier.run_once():
                    pass
                began, spent = time.perf_counter() - began, time.process_time() - spent
                print(
                    f"{backend}: the notifier alone sent {pending} notifications in {began:.2f} s"
                    f" ({pending / began:.0f}/s), {spent * 1000 / max(pending, 1):.3f} ms CPU each"
                )
            async with runtime.db.session() as db:
                rated = await db.scalar(
                    select(func.count()).select_from(Case).where(Case.status == "rated")
                )
                events = await db.scalar(
                    select(func.count())
                    .select_from(OutboxEntry)
                    .where(OutboxEntry.type == "case.rated")
                )
                sent = await db.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.status == "sent")
                )
        finally:
            await runner.cleanup()
    pushes = len(latencies)
    assert rated == events == pushes * BATCH, (rated, events, pushes)
    unhappy = sum(1 for n in range(rated) if n % 3 == 2)
    # Each: the citizen's SMS and the staff alert.
    assert sent == 2 * unhappy or "notifier" in off, (sent, unhappy)
    print(
        f"{backend:<10}{pushes:>7}{rated:>9}{pushes / acknowledged:>10.1f}{rated / elapsed:>11.0f}"
        f"{statistics.median(latencies) * 1000:>15.0f}{max(latencies) * 1000:>12.0f}"
        f"{sent:>7}{notified:>11.2f}{cpu:>7.2f}"
    )


async def unsent(runtime: Minyi) -> int:
    """Notifications not yet sent, skipped or failed."""
    async with runtime.db.reading() as db:
        return int(
            await db.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "pending")
            )
            or 0
        )


async def main(
    replies: int,
    concurrency: int,
    backends: list[str],
    off: frozenset[str],
    notices_after: bool = False,
    gc_freeze: bool = False,
) -> None:
    port = free_port()
    fake = multiprocessing.Process(target=stand_in, args=(port,), daemon=True)
    fake.start()
    provider = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # until the stand-in listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        print(f"{replies} rating replies in pushes of {BATCH}, {concurrency} concurrent pushes")
        print(
            f"{'backend':<10}{'pushes':>7}{'rated':>9}{'pushes/s':>10}{'replies/s':>11}"
            f"{'ack median ms':>15}{'ack max ms':>12}{'sent':>7}{'notified s':>11}{'CPU s':>7}"
        )
        for backend in backends:
            await run(backend, replies, concurrency, provider, off, notices_after, gc_freeze)
            gc.unfreeze()
    finally:
        fake.terminate()
        fake.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profile", metavar="FILE", help="py-spy's raw samples of the run")
    parser.add_argument("--off", default="", help="background jobs left out, comma-separated")
    parser.add_argument(
        "--notices-after", action="store_true", help="the notifier alone, after the ratings"
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="leave the start-up heap to the garbage collector (minyi serve freezes it)",
    )
    args = parser.parse_args()
    if args.profile:
        again = [a for a in sys.argv if a != args.profile and a != "--profile"]
        again = [a for a in again if not a.startswith("--profile=")]
        command = ["py-spy", "record", "-f", "raw", "-o", args.profile, "--", sys.executable]
        sys.exit(subprocess.call([*command, *again]))
    with open(os.devnull, "w") as devnull:
        log_like_production(devnull)
        asyncio.run(
            main(
                args.replies - args.replies % BATCH,
                args.concurrency,
                args.backends.split(","),
                frozenset(filter(None, args.off.split(","))),
                args.notices_after,
                args.gc_freeze,
            )
        )
