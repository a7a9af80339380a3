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
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Update, func, select, text, update

from .crypto import PiiCipher
from .db import Database
from .models import OutboxEntry, utcnow

RELAY_LOCK = 0x4D494E5949  # "MINYI": the advisory lock id of the publishing relay
BATCH = 500


# Every entry of a batch in one command with one argument: one round trip, one small reply,
# and one argument for redis-py to pack instead of eight per entry (a MULTI pipeline sent a
# command and read two replies per entry). The argument is the entries' fields, each ended by
# the ASCII unit separator (0x1F), which no field holds: ids, types and case codes are plain
# ASCII text, and JSON escapes every control character inside its strings. A script runs
# whole or, on an error half-way (out of memory), stops there with the entries before it kept:
# the batch is then not marked published and goes out again, in the same order — at least
# once, as the contract says, and consumers deduplicate on `id`.
_XADD_ALL = r"""
local s, at, f, n = ARGV[1], 1, {}, 0
while at <= #s do
  local stop = string.find(s, '\31', at, true)
  if not stop then return redis.error_reply('an unended field') end
  f[#f + 1] = string.sub(s, at, stop - 1)
  at = stop + 1
  if #f == 4 then
    redis.call('XADD', KEYS[1], '*', 'id', f[1], 'type', f[2], 'case', f[3], 'data', f[4])
    f, n = {}, n + 1
  end
end
return n
"""
_END = "\x1f"
# The `data` field's JSON (compact, UTF-8 as is), one encoder for all: json.dumps with these
# options builds a new encoder per call, which costs as much as the encoding.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_COLUMNS = OutboxEntry.__table__.c
_CLAIM = (
    select(
        _COLUMNS.seq,
        _COLUMNS.id,
        _COLUMNS.type,
        _COLUMNS.case_code,
        _COLUMNS.data,
        _COLUMNS.private_enc,
    )
    .where(_COLUMNS.published_at.is_(None))
    .order_by(_COLUMNS.seq)
)
# PostgreSQL: the last position comes with the claim, and the batch is numbered from it in one
# UPDATE joined to two arrays (seqs, positions) — the same statement, prepared once, whatever
# the batch's size.
_PUBLISHED = OutboxEntry.__table__.alias("published")
_LAST_POSITION = (
    select(func.coalesce(func.max(_PUBLISHED.c.position), 0))
    .correlate(None)
    .scalar_subquery()
    .label("last")
)
_MARK_PG = text(
    "UPDATE outbox SET position = v.position, published_at = :now "
    "FROM unnest(CAST(:seqs AS INTEGER[]), CAST(:positions AS INTEGER[])) AS v(seq, position) "
    "WHERE outbox.seq = v.seq"
)
_LOCK_PG = text("SELECT pg_try_advisory_xact_lock(:lock)")


class Relay:
    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        redis: Redis | None,
        stream: str,
        *,
        batch: int = BATCH,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.redis = redis
        self.stream = stream
        self.batch = batch
        self._xadd_all = redis.register_script(_XADD_ALL) if redis is not None else None

    async def publish_once(self) -> int:
        """Publish one batch; the number of rows published (0 when idle or another relay works).

        SQLAlchemy Core on the session's connection, no ORM objects: the claim, one Redis
        command, one UPDATE and the commit."""
        postgres = self.db.is_postgres
        async with self.db.session() as session, session.begin():
            conn = await session.connection()
            if postgres and not await conn.scalar(_LOCK_PG, {"lock": RELAY_LOCK}):
                return 0
            claim = _CLAIM.limit(self.batch)
            if postgres:
                claim = claim.add_columns(_LAST_POSITION).with_for_update(skip_locked=True)
            rows = (await conn.execute(claim)).all()
            if not rows:
                return 0
            if self._xadd_all is not None:
                fields: list[str] = []
                for row in rows:
                    fields += (row.id, row.type, row.case_code, _data_json(self.cipher, row))
                packed = _END.join(fields) + _END
                if packed.count(_END) != len(fields):  # never expected (see _XADD_ALL)
                    raise ValueError("an outbox row's id, type or case holds 0x1F")
                published = await self._xadd_all(keys=[self.stream], args=[packed])
                if int(published) != len(rows):  # never expected: the script adds them all
                    raise RuntimeError(f"stream took {published} of {len(rows)} entries")
            seqs = [row.seq for row in rows]
            now = utcnow()
            if postgres:
                last = int(rows[0].last)
                positions = list(range(last + 1, last + 1 + len(seqs)))
                await conn.execute(_MARK_PG, {"now": now, "seqs": seqs, "positions": positions})
            else:
                await conn.execute(_mark_published(seqs, now))
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


def _data_json(cipher: PiiCipher, row: Any) -> str:
    """The `data` field: the row's data, personal data decrypted back in (only rows with any)."""
    data = row.data
    if row.private_enc:
        data = {**data, **json.loads(cipher.decrypt(row.private_enc, "outbox"))}
    return _JSON.encode(data)


def _mark_published(seqs: list[int], now: datetime) -> Update:
    """Positions after the last one, in the order claimed (by seq), and the time: one UPDATE
    for the batch rather than one per row (SQLite; PostgreSQL numbers them in `_MARK_PG`)."""
    last = select(func.coalesce(func.max(OutboxEntry.position), 0)).scalar_subquery()
    ranked = (
        select(
            OutboxEntry.seq.label("seq"),
            func.row_number().over(order_by=OutboxEntry.seq).label("n"),
        )
        .where(OutboxEntry.seq.in_(seqs))
        .subquery()
    )
    return (
        update(OutboxEntry)
        .where(OutboxEntry.seq == ranked.c.seq)
        .values(position=last + ranked.c.n, published_at=now)
        .execution_options(synchronize_session=False)
    )


def stream_fields(row: OutboxEntry, data: dict[str, object]) -> dict[str, str]:
    """The entry as CONTRACTS.md defines it: id, type, case, data (JSON)."""
    return {
        "id": row.id,
        "type": row.type,
        "case": row.case_code,
        "data": _JSON.encode(data),
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
