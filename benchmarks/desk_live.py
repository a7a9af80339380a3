"""The desk's live feed under load: many desks open while many citizens talk to staff.

    python benchmarks/desk_live.py [--desks 50] [--citizens 200] [--seconds 30] [--pause 2.5]
                                   [--backend postgres+redis|postgres|sqlite]

A real `minyi serve` (workers included) runs in a subprocess on a throwaway database (and a fresh
Redis prefix). Each citizen asks for a person on the web chat; one desk claims every
conversation; then `--desks` desk pages hold `GET /desk/live` open (each its own sign-in, as
staff on duty would) while every citizen sends a message, waits about `--pause` seconds
(uniformly 0.5x-1.5x), and sends again. For each message, the delay is measured from just
before the citizen's POST to the moment each desk's stream names that conversation: the note
that makes the open page fetch the new words. Printed: messages sent, notes heard, delay
p50/p99/max over all desks, and notes the desks missed (a message no desk-stream named within
5 s).

Baseline in the same run: the citizen's own POST (send to answer), i.e. what the delay would be
if the desk heard it the moment the turn was committed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import secrets
import signal
import socket
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from throwaway import database

from storage.crypto import PiiCipher
from storage.db import Database
from storage.staff import StaffAccounts, hash_password
from storage.uow import UnitOfWork

PII_KEY = base64.urlsafe_b64encode(b"d" * 32).decode()
PASSWORD = "benchmark password"
REDIS_URL = os.environ.get("MINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
MISSED_AFTER = 5.0
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def seed_staff(url: str) -> None:
    db = Database(url)
    async with UnitOfWork(db, PiiCipher(base64.urlsafe_b64decode(PII_KEY))) as uow:
        await StaffAccounts(uow.session).add(
            "duty", "值班员", "staff", await hash_password(PASSWORD)
        )
        await uow.commit()
    await db.dispose()


async def serve(url: str, backend: str, port: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "MINYI_DATABASE_URL": url,
        "MINYI_PII_KEY": PII_KEY,
        "MINYI_API_TOKEN": secrets.token_urlsafe(32),
        "MINYI_LOG_LEVEL": "WARNING",
        # Every simulated citizen comes from 127.0.0.1: the per-address limit would refuse them.
        "MINYI_RATE_ADDRESS": "1000000/min",
        "MINYI_RATE_SENDER": "1000/min",
    }
    if backend == "postgres+redis":
        prefix = f"bench:{secrets.token_hex(4)}:"
        env |= {"MINYI_REDIS_URL": REDIS_URL, "MINYI_REDIS_PREFIX": prefix}
        env["MINYI_STREAM"] = prefix + "events"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env, cwd=ROOT,
    )  # fmt: skip
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as answer:
                    if answer.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise SystemExit("minyi serve did not become ready")


async def signed_in_desk(base: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    page = await (await http.get(f"{base}/desk")).text()
    form = {"username": "duty", "password": PASSWORD, "csrf": CSRF.findall(page)[0]}
    answer = await http.post(f"{base}/desk/signin", data=form, allow_redirects=False)
    assert answer.status == 303, await answer.text()
    return http


def browser() -> aiohttp.ClientSession:
    """One citizen's page: it keeps the chat cookie the server issues (on 127.0.0.1 too)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def say(http: aiohttp.ClientSession, base: str, text: str) -> None:
    body = {"text": text, "message_id": secrets.token_hex(12)}
    async with http.post(f"{base}/webchat/messages", json=body) as answer:
        assert answer.status == 200, await answer.text()


async def claim_all(base: str, citizens: int) -> list[str]:
    """Wait until every call for a person is on the desk, then claim each. A fresh database
    numbers the conversations 1..N (the inbox page shows only the latest 100)."""
    desk = await signed_in_desk(base)
    threads = [str(n) for n in range(1, citizens + 1)]
    try:
        for _ in range(600):
            if (await desk.get(f"{base}/desk/threads/{citizens}")).status == 200:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit(f"the {citizens} calls did not all reach the desk")
        for thread in threads:
            page = await (await desk.get(f"{base}/desk/threads/{thread}")).text()
            form = {"csrf": CSRF.findall(page)[0], "nonce": NONCE.findall(page)[0], "do": "claim"}
            answer = await desk.post(f"{base}/desk/threads/{thread}", data=form)
            assert answer.status == 200, await answer.text()
    finally:
        await desk.close()
    return threads


class Feed:
    """What the desks heard: for each message (thread, sent at), when each desk named it."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}  # thread -> when its latest message was sent
        self.heard: dict[str, set[int]] = defaultdict(set)  # thread -> desks that named it
        self.delays: list[float] = []
        self.notes = 0
        self.messages = 0
        self.missed = 0

    def send(self, thread: str) -> None:
        self.sent[thread] = time.perf_counter()
        self.heard[thread] = set()
        self.messages += 1

    def hear(self, desk: int, thread: str) -> None:
        self.notes += 1
        sent = self.sent.get(thread)
        if sent is not None and desk not in self.heard[thread]:
            self.heard[thread].add(desk)
            self.delays.append(time.perf_counter() - sent)


async def watch(base: str, desk: int, feed: Feed, opened: asyncio.Event, count: list[int]) -> None:
    http = await signed_in_desk(base)
    try:
        async with http.get(f"{base}/desk/live", timeout=aiohttp.ClientTimeout(total=None)) as s:
            count[0] += 1
            if count[0] == count[1]:
                opened.set()
            event = ""
            async for raw in s.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "thread":
                    feed.hear(desk, line[5:].strip())
    finally:
        await http.close()


async def talk(base: str, session: str, http: aiohttp.ClientSession, thread: str, feed: Feed,
               until: float, pause: float, posts: list[float]) -> None:  # fmt: skip
    rng = random.Random(session)
    n = 0
    while time.perf_counter() < until:
        await asyncio.sleep(pause * rng.uniform(0.5, 1.5))
        n += 1
        feed.send(thread)
        started = time.perf_counter()
        await say(http, base, f"补充第{n}点：东门第{n}根路灯还是不亮")
        posts.append(time.perf_counter() - started)
        await asyncio.sleep(MISSED_AFTER if time.perf_counter() > until else 0)


async def thread_of_sessions(
    base: str, pages: dict[str, aiohttp.ClientSession], threads: list[str]
) -> dict[str, str]:
    """Which conversation each citizen's is: each says a marker, found on the thread pages."""
    sessions = list(pages)
    await asyncio.gather(*(say(pages[s], base, f"标记{s[-8:]}") for s in sessions))
    desk = await signed_in_desk(base)
    found: dict[str, str] = {}
    try:
        for thread in threads:
            page = await (await desk.get(f"{base}/desk/threads/{thread}?part=messages")).text()
            for session in sessions:
                if f"标记{session[-8:]}" in page:
                    found[session] = thread
    finally:
        await desk.close()
    return found


async def run(args: argparse.Namespace) -> None:
    db_backend = "sqlite" if args.backend == "sqlite" else "postgres"
    async with database(db_backend) as url:
        await seed_staff(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = await serve(url, args.backend, port)
        try:
            sessions = [
                f"bench-citizen-{i:06d}-{secrets.token_hex(4)}" for i in range(args.citizens)
            ]
            pages = {s: browser() for s in sessions}
            await asyncio.gather(*(say(pages[s], base, "人工") for s in sessions))
            claimed = await claim_all(base, args.citizens)
            threads = await thread_of_sessions(base, pages, claimed)
            if len(threads) < len(sessions):
                raise SystemExit(f"only {len(threads)} conversations found on the desk")
            feed, opened, count = Feed(), asyncio.Event(), [0, args.desks]
            watchers = [asyncio.create_task(watch(base, d, feed, opened, count))
                        for d in range(args.desks)]  # fmt: skip
            await asyncio.wait_for(opened.wait(), 60)
            await asyncio.sleep(1)
            until = time.perf_counter() + args.seconds
            posts: list[float] = []
            await asyncio.gather(*(
                talk(base, s, pages[s], threads[s], feed, until, args.pause, posts) for s in sessions
            ))  # fmt: skip
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            for page in pages.values():
                await page.close()
        finally:
            server.send_signal(signal.SIGTERM)
            await server.wait()
    expected = feed.messages * args.desks
    missed = expected - len(feed.delays)
    ms = sorted(d * 1000 for d in feed.delays)
    post_ms = sorted(p * 1000 for p in posts)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    print(f"backend {args.backend}: {args.desks} desks open, {args.citizens} citizens talking, "
          f"{args.seconds} s")  # fmt: skip
    print(f"  messages sent {feed.messages} ({feed.messages / args.seconds:.0f}/s), "
          f"notes heard {feed.notes}, desk×message pairs {expected}, missed {missed}")  # fmt: skip
    print("  | measure | p50 | p99 | max |")
    print("  |---|---:|---:|---:|")
    print(
        f"  | citizen's POST answered (baseline) | {pct(post_ms, 0.5):.0f} ms "
        f"| {pct(post_ms, 0.99):.0f} ms | {post_ms[-1] if post_ms else float('nan'):.0f} ms |"
    )
    print(f"  | message → desk stream names it | {pct(ms, .5):.0f} ms | {pct(ms, .99):.0f} ms "
          f"| {ms[-1] if ms else float('nan'):.0f} ms |")  # fmt: skip
    if ms:
        print(f"  mean {statistics.fmean(ms):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--desks", type=int, default=50)
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pause", type=float, default=2.5)
    parser.add_argument("--backend", default="postgres+redis",
                        choices=("postgres+redis", "postgres", "sqlite"))  # fmt: skip
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
