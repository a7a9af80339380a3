"""The measures (GET /api/v1/stats) over 1,000,000 cases on PostgreSQL: server time per question.

    python benchmarks/stats_million.py [--cases 1000000] [--runs 5]

A throwaway PostgreSQL database (MINYI_BENCH_POSTGRES_URL) is migrated and filled by the server
itself (INSERT … SELECT over generate_series, seeded, so every run has the same data: faster than
COPY, as nothing crosses the wire): cases spread over two years, 5% suggestions, ten categories,
the bundled office's fourteen departments, one case in ten co-handled, most decided, replied,
closed and rated, some late, some reviewed, 8% repeats of an earlier case. Then the app answers
GET /api/v1/stats in process, and each answer is timed from request to the last byte, for the
questions an office asks: the last 30 days, a quarter by week, a year by department and by
category, all two years. The aim: every answer under one second.

The daily rollup (storage/rollup.py) fills lazily, at most BATCH_DAYS days per request: first
the whole two years are asked for until it holds every day old enough, and that is timed on
its own (what the first questions after an upgrade cost), then the questions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from throwaway import database

from bot.app.settings import Settings
from bot.app.web import create_app
from storage.db import Database

PII_KEY = base64.urlsafe_b64encode(b"s" * 32).decode()
TOKEN = "stats-benchmark-token-" + "x" * 32
DEPARTMENTS = ("xfj", "dcs", "zjj", "rsj", "sthj", "cgj", "scjg", "mzj", "nyncj", "zwfw", "sfj",
               "fgw", "chengguan-jd", "dongcheng-jd")  # fmt: skip
CATEGORIES = ("city", "housing", "environment", "labour", "consumer", "public_services",
              "rural", "conduct", "legal", "other")  # fmt: skip
IDENTITIES = 30_000

# One row per case, all drawn from random() after setseed(): r1…r6 are independent uniforms.
FILL = """
INSERT INTO cases (
    id, code, origin, kind, category, description, location_text, channel, identity_id,
    source, language, answers, risk_words, status, department, owner, routed_by, routed_from,
    level, mailbox, outcome, repeat_of, repeat_level, repeat_checked_at, created_at, updated_at,
    accept_due_at, decided_at, accepted_at, finish_due_at, first_replied_at, first_reply_due_at,
    replied_at, closed_at, review_requested_at, rating_score, rating_scale, extended_days,
    extension_reason, stages, anonymous)
SELECT g, 'XF' || g, 'bench:' || g,
    CASE WHEN r1 < 0.05 THEN 'suggestion' ELSE 'petition' END,
    (CAST(:categories AS text[]))[1 + (g % 10)], '小区门口的路灯坏了一个多月，晚上很黑。', '幸福路12号',
    (ARRAY['wechat','webchat','sms','telegram'])[1 + (g % 4)], 1 + (g % CAST(:identities AS int)),
    '', 'zh', '{}', '[]',
    CASE WHEN closed THEN (CASE WHEN r4 < 0.6 THEN 'rated' ELSE 'closed' END)
         WHEN replied THEN 'replied' WHEN decided THEN 'assigned' ELSE 'submitted' END,
    CASE WHEN decided THEN (CAST(:departments AS text[]))[1 + floor(r2 * 14)::int] ELSE '' END,
    '', '', '', 0, '',
    CASE WHEN r1 < 0.05 THEN (ARRAY['', 'adopted', 'partly', 'not_adopted'])[1 + (g % 4)] ELSE '' END,
    CASE WHEN r5 < 0.08 AND g > 1000 THEN g - 1 - floor(r6 * 1000)::int END,
    CASE WHEN r5 < 0.08 AND g > 1000 THEN 2 ELSE 0 END,
    created, created, created, created + interval '15 days',
    CASE WHEN decided THEN created + decide_after END,
    CASE WHEN decided THEN created + decide_after END,
    CASE WHEN decided THEN created + decide_after + interval '60 days' END,
    CASE WHEN replied THEN created + decide_after + reply_after END,
    CASE WHEN replied THEN created + decide_after + interval '60 days' END,
    CASE WHEN replied THEN created + decide_after + reply_after END,
    CASE WHEN closed THEN created + decide_after + reply_after + interval '1 day' END,
    CASE WHEN closed AND r6 < 0.05 THEN created + decide_after + reply_after + interval '3 days' END,
    CASE WHEN closed AND r4 < 0.6 THEN 1 + floor(r3 * 3)::int END,
    CASE WHEN closed AND r4 < 0.6 THEN 3 END,
    0, '', '[]', false
FROM (
    SELECT g, r1, r2, r3, r4, r5, r6,
        CAST(:start AS timestamptz) + (g * CAST(:spacing AS float8)) * interval '1 second' AS created,
        r2 < 0.92 AS decided, r2 < 0.92 AND r3 < 0.8 AS replied,
        r2 < 0.92 AND r3 < 0.72 AS closed,
        (r6 * 20) * interval '1 day' AS decide_after,
        (r5 * 75) * interval '1 day' AS reply_after
    FROM (
        SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
            random() AS r5, random() AS r6
        FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g
    ) drawn
) AS c
"""


async def fill(url: str, count: int, now: datetime) -> None:
    db = Database(url)
    start = now - timedelta(days=730)
    spacing = 730 * 86400 / count
    async with db.engine.begin() as conn:
        await conn.execute(text("SELECT setseed(0.42)"))
        await conn.execute(
            text(
                "INSERT INTO identities (id, channel, external_id, language, created_at)"
                " SELECT g, 'wechat', 'o' || g, 'zh', now() FROM generate_series(1, :n) g"
            ),
            {"n": IDENTITIES},
        )
        for first in range(1, count + 1, 200_000):
            await conn.execute(
                text(FILL),
                {
                    "categories": list(CATEGORIES),
                    "departments": list(DEPARTMENTS),
                    "identities": IDENTITIES,
                    "start": start,
                    "spacing": spacing,
                    "first": first,
                    "last": min(count, first + 199_999),
                },
            )
        await conn.execute(
            text(
                "INSERT INTO case_co_departments (case_id, department) SELECT id,"
                " CASE WHEN department = 'cgj' THEN 'zjj' ELSE 'cgj' END"
                " FROM cases WHERE id % 10 = 0 AND department <> ''"
            )
        )
        await conn.execute(text("SELECT setval('cases_id_seq', :n)"), {"n": count})
    # As autovacuum leaves a settled table: statistics and the visibility map.
    async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.execute(text("VACUUM ANALYZE"))
    await db.dispose()


async def fill_rollup(client: TestClient, auth: dict[str, str], url: str, now: datetime) -> None:
    db = Database(url)
    params = {**questions(now)[-2][1]}
    times: list[float] = []
    days = rows = last_days = -1
    try:
        for _ in range(30):
            begun = time.perf_counter()
            response = await client.get("/api/v1/stats", params=params, headers=auth)
            await response.read()
            times.append((time.perf_counter() - begun) * 1000)
            async with db.engine.connect() as conn:
                days = await conn.scalar(text("SELECT count(*) FROM stats_rollup_days"))
                rows = await conn.scalar(text("SELECT count(*) FROM stats_rollup"))
            if days == last_days:
                break
            last_days = days
    finally:
        await db.dispose()
    print(
        f"rollup filled by {len(times)} requests for two years by department:"
        f" {days} days, {rows} rows; each {', '.join(f'{t:.0f}' for t in times)} ms"
    )


def questions(now: datetime) -> list[tuple[str, dict[str, str]]]:
    def period(days: int) -> dict[str, str]:
        return {"from": (now - timedelta(days=days)).isoformat(), "to": now.isoformat()}

    return [
        ("last 30 days, total", period(30)),
        ("last 30 days, by department", {**period(30), "by": "department"}),
        ("a quarter, by week", {**period(91), "by": "week"}),
        ("a year, total", period(365)),
        ("a year, by department", {**period(365), "by": "department"}),
        ("a year, by category", {**period(365), "by": "category"}),
        ("a year, by week", {**period(365), "by": "week"}),
        ("two years, by department", {**period(731), "by": "department"}),
        ("two years, CSV by department", {**period(731), "by": "department", "format": "csv"}),
    ]


async def main(args: argparse.Namespace) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with database("postgres") as url:
        started = time.perf_counter()
        await fill(url, args.cases, now)
        print(f"{args.cases:,} cases written in {time.perf_counter() - started:.0f} s")
        settings = Settings(database_url=url, pii_key=PII_KEY, api_token=TOKEN)
        client = TestClient(TestServer(create_app(settings, workers=False)))
        await client.start_server()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        try:
            await fill_rollup(client, auth, url, now)
            print(f"\n{'question':<32} {'cases':>9} {'p50 ms':>8} {'max ms':>8}")
            worst = 0.0
            for name, params in questions(now):
                times = []
                cases = "csv"
                for run in range(args.runs + 1):
                    begun = time.perf_counter()
                    response = await client.get("/api/v1/stats", params=params, headers=auth)
                    body = await response.read()
                    if run:  # the first one warms the caches
                        times.append((time.perf_counter() - begun) * 1000)
                    assert response.status == 200, body[:300]
                    if params.get("format") != "csv":
                        cases = f"{(await response.json())['total']['cases']:,}"
                worst = max(worst, max(times))
                print(f"{name:<32} {cases:>9} {statistics.median(times):>8.0f} {max(times):>8.0f}")
            verdict = "within" if worst < 1000 else "OVER"
            print(f"\nslowest answer {worst:.0f} ms: {verdict} the one-second aim")
            print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
        finally:
            await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
