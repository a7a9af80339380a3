"""Case submissions per second, alone: many distinct citizens submitting completed forms at once.

    python benchmarks/submits.py [--submits 2000] [--concurrency 64] [--backends sqlite,postgres]
                                 [--runs 2] [--profile DIR]

Each submit is the database work of a chat's `1 提交` turn, as the conversation store runs it:
in the turn's transaction (`Database.transaction()`) with the unit of work joined to it, so
the filing is written prebuilt on the connection with no ORM session — the repeat question's
lookup (the asker's open matters like this one), then `CommandHandler.apply` with the
`SubmitCase` the form builds (a new WeChat openid, a new mobile and name, a description, an
address), the flush and the commit. The baseline, in the same run on the same database, is
those rows written SQLAlchemy's usual way: one transaction per submit with five Core INSERTs of
an identity, a citizen, a case, its first timeline event and its outbox entry — no lookups, no
encryption, no hashing. (Minyi's submit, its statements prebuilt and the filing's rows written
together, now runs faster than that baseline.) This is the submit in its transaction, as the
database store, and any store for a filing with photos, runs it; the Redis store's usual submit
on PostgreSQL also leaves out BEGIN and COMMIT (`StoreTurn.connection`, docs/wechat.md, seventh
round), so it costs less than measured here. On PostgreSQL the database is analysed before
each measured run, as autovacuum would keep it (it is off on the test server).

Checked after each run: one case, one `submitted` event and one `case.submitted` outbox entry per
form, and a second submit of 200 of the same forms files nothing new (idempotency by form id).
PostgreSQL runs in a throwaway database (MINYI_BENCH_POSTGRES_URL); `--profile DIR` records the
Minyi part of each run with py-spy (must be installed) into DIR/submits-<backend>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text
from throwaway import database

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.repeats import RepeatRules
from conversation.commands import SubmitCase
from conversation.messages import Inbound
from conversation.similarity import similarity
from storage.crypto import PiiCipher
from storage.db import POOL_SIZE, Database
from storage.intake import CommandHandler
from storage.lookups import CaseLookups
from storage.models import Case, CaseEvent, Citizen, Identity, OutboxEntry, utcnow
from storage.timeline import GENESIS
from storage.uow import UnitOfWork

DESCRIPTION = "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。希望尽快派人修好。"
ADDRESS = "幸福路12号幸福小区东门"


def command(n: int, run: str, deadlines: LegalDeadlines) -> tuple[SubmitCase, Inbound]:
    sender = f"o{run}{n:07d}"
    inbound = Inbound(channel="wechat", sender=sender, text="1", message_id=f"{run}-{n}")
    submit = SubmitCase(
        origin=f"wechat:{sender}:{run}{n}",
        kind="petition",
        category="4",
        description=DESCRIPTION,
        location_text=ADDRESS,
        name="张三",
        phone=f"+86139{n % 100_000_000:08d}",
        answers={"_form": "petition"},
        department="城管局",
        acceptance_due=deadlines.acceptance_due(utcnow()),
    )
    return submit, inbound


async def minyi_submit(
    db: Database,
    cipher: PiiCipher,
    deadlines: LegalDeadlines,
    rules: RepeatRules,
    n: int,
    *,
    run: str,
) -> None:
    submit, inbound = command(n, run, deadlines)
    # As a turn runs it (storage.conversations.StoreTurn): the unit of work joined to the
    # turn's transaction, which commits once the unit of work has flushed.
    async with db.transaction() as connection:
        async with UnitOfWork(db, cipher, connection=connection) as uow:
            await CaseLookups(uow).similar_open_case(  # the repeat question, then the filing
                inbound.channel,
                inbound.sender,
                submit.kind,
                submit.category,
                submit.description,
                rules,
                similarity,
            )
            await CommandHandler(uow, deadlines).apply([submit], inbound)
            await uow.flush()
            await uow.commit()
        await connection.commit()


async def bare_submit(db: Database, n: int, *, run: str) -> None:
    """The same five rows with nothing around them: the floor a submit could reach."""
    now = utcnow()
    async with db.engine.begin() as conn:
        identity = await conn.scalar(
            insert(Identity)
            .values(channel="wechat", external_id=f"b{run}{n:07d}", language="zh")
            .returning(Identity.id)
        )
        citizen = await conn.scalar(
            insert(Citizen)
            .values(phone_hash=secrets.token_hex(32), phone_enc=b"x" * 40, name_enc=b"y" * 30)
            .returning(Citizen.id)
        )
        code = f"B{run}{n:07d}"
        case = await conn.scalar(
            insert(Case)
            .values(
                code=code,
                origin=f"bare:{run}:{n}",
                kind="petition",
                category="4",
                description=DESCRIPTION,
                location_text=ADDRESS,
                channel="wechat",
                identity_id=identity,
                citizen_id=citizen,
                answers={"_form": "petition"},
                risk_words=[],
                status="submitted",
                department="城管局",
                created_at=now,
                updated_at=now,
                accept_due_at=now + timedelta(days=15),
                stages=[],
            )
            .returning(Case.id)
        )
        await conn.execute(
            insert(CaseEvent).values(
                case_id=case,
                seq=1,
                type="submitted",
                actor="citizen:wechat",
                data={"kind": "petition"},
                at=now,
                prev_hash=GENESIS,
                hash=secrets.token_hex(32),
            )
        )
        await conn.execute(
            insert(OutboxEntry).values(
                id=str(uuid.uuid4()), type="case.submitted", case_code=code, data={"code": code}
            )
        )


async def settle(db: Database) -> None:
    """Statistics as autovacuum keeps them (it is off on the test server): on tables that grew
    from empty without them, PostgreSQL plans the asker's-cases lookup as a walk through every
    case of the category, and each run is slower than the last (586, 359, 264, 200 a second)."""
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


async def drive(
    submits: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> dict[str, float]:
    latencies: list[float] = []
    queue = iter(range(submits))

    async def worker() -> None:
        for n in queue:
            started = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "per_s": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


async def check(db: Database, run: str, submits: int) -> str:
    async with db.engine.connect() as conn:
        cases = await conn.scalar(
            select(func.count()).select_from(Case).where(Case.origin.like(f"wechat:o{run}%"))
        )
        events = await conn.scalar(
            select(func.count())
            .select_from(CaseEvent)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(Case.origin.like(f"wechat:o{run}%"), CaseEvent.type == "submitted")
        )
        outbox = await conn.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .join(Case, Case.code == OutboxEntry.case_code)
            .where(Case.origin.like(f"wechat:o{run}%"), OutboxEntry.type == "case.submitted")
        )
    if (cases, events, outbox) != (submits, submits, submits):
        raise SystemExit(f"{run}: {cases} cases, {events} events, {outbox} outbox for {submits}")
    return f"{cases} cases, {events} events, {outbox} outbox entries"


async def run_backend(name: str, args: argparse.Namespace, runs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    cipher = PiiCipher(secrets.token_bytes(32))
    deadlines = LegalDeadlines(ZoneInfo("Asia/Shanghai"))
    rules = RepeatRules()
    async with database(name) as url:
        db = Database(url, pool_size=args.pool)
        try:
            await minyi_submit(db, cipher, deadlines, rules, 0, run="warm")  # connections, caches
            await bare_submit(db, 0, run="warm")
            for r in range(runs):
                run = f"{r}{secrets.token_hex(2)}"
                bare = await drive(
                    args.submits, args.concurrency, partial(bare_submit, db, run=run)
                )
                if name == "postgres":
                    await settle(db)
                spy = _profile(args.profile, name, r)
                try:
                    minyi = await drive(
                        args.submits,
                        args.concurrency,
                        partial(minyi_submit, db, cipher, deadlines, rules, run=run),
                    )
                finally:
                    _stop(spy)
                checked = await check(db, run, args.submits)
                # The same forms again: nothing new may be filed.
                await drive(
                    200,
                    args.concurrency,
                    partial(minyi_submit, db, cipher, deadlines, rules, run=run),
                )
                await check(db, run, args.submits)
                rows.append({"backend": name, "what": "bare Core INSERTs", **bare})
                rows.append({"backend": name, "what": "Minyi submit", **minyi, "check": checked})
        finally:
            await db.dispose()
    return rows


def _profile(folder: str, backend: str, run: int) -> subprocess.Popen[bytes] | None:
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"submits-{backend}-{run}.txt"
    return subprocess.Popen(
        ["py-spy", "record", "-f", "raw", "-r", "200", "-o", str(out), "-p", str(os.getpid())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(2)
        spy.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--pool", type=int, default=POOL_SIZE, help="PostgreSQL pool size (the server's)"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", default="", help="folder for py-spy's raw samples")
    args = parser.parse_args()
    print(
        f"{args.submits} distinct citizens submitting, {args.concurrency} at a time; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'backend':<10}{'what':<20}{'submits/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in args.backends.split(","):
        for row in await run_backend(name, args, args.runs):
            print(
                f"{row['backend']:<10}{row['what']:<20}{row['per_s']:>10.0f}"
                f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}"
                + (f"   ({row['check']})" if "check" in row else "")
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
