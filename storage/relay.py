"""The outbox relay: committed events → the Redis stream (when configured) and the polling feed.

One relay publishes at a time (a transaction-scoped advisory lock on PostgreSQL; SQLite's
BEGIN IMMEDIATE serialises by itself), and rows are claimed FOR UPDATE SKIP LOCKED as well, so
two relays never publish one row twice in normal operation. A crash between XADD and the commit
can publish a batch again: delivery is at least once, and consumers deduplicate on `id`.

Publishing also gives each row its `position` in the polling feed (GET /api/v1/events). Rows
are committed out of insert order now and then, so a feed paged by insert order could skip one
for good; positions are handed out here, under the lock, in publishing order.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select, update

from .crypto import PiiCipher
from .db import Database
from .models import OutboxEntry, utcnow
from .uow import UnitOfWork

RELAY_LOCK = 0x4D494E5949  # "MINYI": the advisory lock id of the publishing relay


class Relay:
    def __init__(
        self, db: Database, cipher: PiiCipher, redis: Redis | None, stream: str, *, batch: int = 200
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.redis = redis
        self.stream = stream
        self.batch = batch

    async def publish_once(self) -> int:
        """Publish one batch; the number of rows published (0 when idle or another relay works)."""
        async with UnitOfWork(self.db, self.cipher) as uow:
            if self.db.is_postgres:
                got = await uow.session.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK)))
                if not got:
                    return 0
            rows = await uow.outbox.claim_unpublished(self.batch, skip_locked=self.db.is_postgres)
            if not rows:
                return 0
            if self.redis is not None:
                async with self.redis.pipeline(transaction=True) as pipe:
                    for row in rows:
                        pipe.xadd(self.stream, stream_fields(row, uow.outbox.data(row)))  # type: ignore[arg-type]
                    await pipe.execute()
            await _mark_published(uow, [row.seq for row in rows])
            await uow.commit()
        return len(rows)

    async def trim(self, retention: timedelta, now: datetime | None = None) -> int:
        """Drop stream entries older than `retention` that every consumer group has acknowledged.

        Nothing at or after the oldest pending entry of any group, or after what a group has yet
        to read, is ever removed (MAXLEN would: it trims pending entries too).
        """
        if self.redis is None or not await self.redis.exists(self.stream):
            return 0
        cut = stream_id_at(now or utcnow(), retention)
        for group in await self.redis.xinfo_groups(self.stream):
            name = _text(group["name"])
            cut = min(cut, _after(_text(group["last-delivered-id"])), key=_id_key)
            if int(group["pending"]):
                summary = await self.redis.xpending(self.stream, name)
                cut = min(cut, _text(summary["min"]), key=_id_key)
        return int(await self.redis.xtrim(self.stream, minid=cut, approximate=False))


async def _mark_published(uow: UnitOfWork, seqs: list[int]) -> None:
    """Positions after the last one, in the order claimed (by seq), and the time: one UPDATE
    for the batch rather than one per row."""
    last = select(func.coalesce(func.max(OutboxEntry.position), 0)).scalar_subquery()
    ranked = (
        select(
            OutboxEntry.seq.label("seq"),
            func.row_number().over(order_by=OutboxEntry.seq).label("n"),
        )
        .where(OutboxEntry.seq.in_(seqs))
        .subquery()
    )
    await uow.session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.seq == ranked.c.seq)
        .values(position=last + ranked.c.n, published_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def stream_fields(row: OutboxEntry, data: dict[str, object]) -> dict[str, str]:
    """The entry as CONTRACTS.md defines it: id, type, case, data (JSON)."""
    return {
        "id": row.id,
        "type": row.type,
        "case": row.case_code,
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
    }


def stream_id_at(now: datetime, retention: timedelta) -> str:
    return f"{int((now - retention).timestamp() * 1000)}-0"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _after(stream_id: str) -> str:
    ms, seq = _id_key(stream_id)
    return f"{ms}-{seq + 1}"
