"""Open311 `GET requests.json` over 100,000 cases on PostgreSQL: a page of 1,000, server time.

    python benchmarks/open311_requests.py [--cases 100000] [--runs 20] [--without-index]

Cases are spread over a year (so about 25,000 fall in the default 90 days), ten categories,
every status; each has its timeline (1-5 steps), a contact (encrypted, as filed) and one in
five a photo. Each query is timed in the handler's own terms (from the query to the rendered
body, no network) and over HTTP on loopback. `--without-index` drops the migration's
`ix_cases_category_created_at` first, to show what it is for.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, text
from throwaway import database

from bot.app.settings import Settings
from bot.app.web import create_app
from bot.open311 import listing
from bot.open311.render import render
from conversation.office import load_office
from storage.crypto import PiiCipher
from storage.db import Database
from storage.models import Attachment, Case, CaseEvent, Identity
from storage.uow import Units

PII_KEY = base64.urlsafe_b64encode(b"b" * 32).decode()
STEPS = ["submitted", "accepted", "assigned", "replied", "closed"]
QUERIES = {
    "default (last 90 days)": "",
    "one service": "service_code=city",
    "closed": "status=closed",
    "rare service, open": "service_code=legal&status=open",
}


async def fill(db: Database, cipher: PiiCipher, n: int) -> None:
    rng = random.Random(2026)
    common = [c.key for c in load_office().categories if c.key != "legal"]
    now = datetime.now(UTC)
    name, phone = cipher.encrypt("李四", "name"), cipher.encrypt("+8613912345678", "phone")
    async with db.engine.begin() as conn:
        await conn.execute(insert(Identity), [{"channel": "api", "external_id": "grid:07"}])
        for start in range(0, n, 5000):
            cases, events, photos = [], [], []
            for i in range(start, min(n, start + 5000)):
                created = now - timedelta(seconds=rng.randrange(365 * 86400))
                steps = STEPS[: rng.randint(1, len(STEPS))]
                # "legal" is rare: one case in a hundred.
                category = "legal" if i % 100 == 0 else rng.choice(common)
                cases.append(
                    {
                        "id": i + 1,
                        "code": f"XF{created:%Y%m%d}-{i:06d}",
                        "origin": f"bench:{i}",
                        "kind": "petition",
                        "category": category,
                        "description": "幸福路的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。" * 3,
                        "location_text": "XX区幸福路12号",
                        "lat": 31.2 + rng.random() / 10,
                        "lng": 121.4 + rng.random() / 10,
                        "channel": "api",
                        "identity_id": 1,
                        "contact_name_enc": name,
                        "contact_phone_enc": phone,
                        "source": "grid:07",
                        "status": steps[-1],
                        "department": "区城管局" if len(steps) > 2 else "",
                        "created_at": created,
                        "updated_at": created + timedelta(days=len(steps)),
                        "accept_due_at": created + timedelta(days=15),
                    }
                )
                for seq, step in enumerate(steps, 1):
                    data = {"note": "路灯已修复。"} if step == "replied" else {}
                    events.append(
                        {
                            "case_id": i + 1,
                            "seq": seq,
                            "type": step,
                            "actor": "backoffice",
                            "data": data,
                            "at": created + timedelta(days=seq),
                            "prev_hash": "0" * 64,
                            "hash": f"{i:032d}{seq:032d}",
                        }
                    )
                if i % 5 == 0:
                    url = f"https://photos.example.com/{i}.jpg"
                    photos.append(
                        {
                            "case_id": i + 1,
                            "kind": "image",
                            "channel": "api",
                            "ref": url,
                            "url": url,
                        }
                    )
            await conn.execute(insert(Case), cases)
            await conn.execute(insert(CaseEvent), events)
            if photos:
                await conn.execute(insert(Attachment), photos)
        await conn.execute(text("ANALYZE"))


async def server_time(units: Units, query: str, runs: int) -> tuple[list[float], int]:
    office = load_office()
    wanted = listing.Wanted(
        services=tuple(v for k, v in _pairs(query) if k == "service_code"),
        statuses=tuple(v for k, v in _pairs(query) if k == "status"),
        start=datetime.now(UTC) - timedelta(days=90),
        end=datetime.now(UTC),
    )
    times, count = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        async with units() as uow:
            cases = await listing.find(uow, wanted)
            items = listing.service_requests(uow, cases, office)
        render(items, "json", "service_requests")
        times.append((time.perf_counter() - started) * 1000)
        count = len(items)
    return times, count


def _pairs(query: str) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in query.split("&") if part]  # type: ignore[misc]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--without-index", action="store_true")
    args = parser.parse_args()
    async with database("postgres") as url:
        settings = Settings(database_url=url, pii_key=PII_KEY, api_token="bench")
        db = Database(url)
        started = time.perf_counter()
        cipher = PiiCipher(base64.urlsafe_b64decode(PII_KEY))
        await fill(db, cipher, args.cases)
        if args.without_index:
            async with db.engine.begin() as conn:
                await conn.execute(text("DROP INDEX ix_cases_category_created_at"))
        print(f"{args.cases:,} cases written in {time.perf_counter() - started:.1f} s")
        units = Units(db, cipher, tz=settings.tz())
        print(
            f"\n{'query':<26} {'items':>6} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}  http p50 ms"
        )
        async with TestClient(TestServer(create_app(settings, workers=False))) as client:
            for label, query in QUERIES.items():
                await server_time(units, query, 2)  # warm the caches
                times, count = await server_time(units, query, args.runs)
                http = []
                for _ in range(args.runs):
                    begun = time.perf_counter()
                    response = await client.get(f"/open311/v2/requests.json?{query}")
                    await response.read()
                    http.append((time.perf_counter() - begun) * 1000)
                    assert response.status == 200
                times.sort()
                print(
                    f"{label:<26} {count:>6} {statistics.median(times):>8.1f} "
                    f"{times[int(len(times) * 0.9) - 1]:>8.1f} {times[-1]:>8.1f}  "
                    f"{statistics.median(http):>10.1f}"
                )
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
