"""The case timeline: append-only and hash-chained, so an edited row is found (件件可倒查)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Case, CaseEvent, utcnow

GENESIS = "0" * 64


def event_hash(
    prev_hash: str, code: str, seq: int, type_: str, actor: str, data: Any, at: datetime
) -> str:
    """SHA-256 over the previous hash and this event in canonical JSON."""
    body = json.dumps(
        {
            "case": code,
            "seq": seq,
            "type": type_,
            "actor": actor,
            "data": data,
            "at": at.isoformat(),
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


class Timeline:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Each case's last (seq, hash), for cases whose rows this unit of work holds locked
        # (`preload`): a batch appends without a query, and a flush, per event.
        self._heads: dict[int, tuple[int, str]] = {}
        # Events kept for `write_held` (a batch): written by one statement, not the flush.
        self._held: list[CaseEvent] | None = None

    def hold(self) -> None:
        """Keep what is appended from now on for `write_held`, for cases `preload`ed."""
        if self._held is None:
            self._held = []

    async def write_held(self) -> None:
        """Write the held events in one INSERT (executemany), rows exactly as appended."""
        held, self._held = self._held, None
        if held:
            table = CaseEvent.__table__
            assert isinstance(table, Table)
            await self.session.execute(
                insert(table),
                [
                    {
                        "case_id": e.case_id,
                        "seq": e.seq,
                        "type": e.type,
                        "actor": e.actor,
                        "data": e.data,
                        "at": e.at,
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in held
                ],
            )

    async def preload(self, case_ids: Collection[int]) -> None:
        """Read the last event of many cases in one query. Only for cases the caller holds
        (FOR UPDATE on PostgreSQL) until the commit, like `append` itself."""
        ids = [i for i in set(case_ids) if i not in self._heads]
        if not ids:
            return
        last = (
            select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
            .where(CaseEvent.case_id.in_(ids))
            .group_by(CaseEvent.case_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.hash).join(
                last, (CaseEvent.case_id == last.c.case_id) & (CaseEvent.seq == last.c.seq)
            )
        )
        self._heads.update(dict.fromkeys(ids, (0, GENESIS)))
        self._heads.update({r.case_id: (r.seq, r.hash) for r in rows})

    async def append(
        self,
        case: Case,
        type_: str,
        actor: str,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
        *,
        first: bool = False,
    ) -> CaseEvent:
        """Add one event (written with the unit of work's next flush). Callers hold the case row
        (FOR UPDATE on PostgreSQL) so its seq is theirs; `first` for a case just filed."""
        head = self._heads.get(case.id)
        if head is not None:
            seq, prev = head[0] + 1, head[1]
        else:
            last = None
            if not first:
                last = (
                    await self.session.execute(
                        select(CaseEvent.seq, CaseEvent.hash)
                        .where(CaseEvent.case_id == case.id)
                        .order_by(CaseEvent.seq.desc())
                        .limit(1)
                    )
                ).first()
            seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
        moment = at or utcnow()
        payload = dict(data or {})
        event = CaseEvent(
            case_id=case.id,
            seq=seq,
            type=type_,
            actor=actor,
            data=payload,
            at=moment,
            prev_hash=prev,
            hash=event_hash(prev, case.code, seq, type_, actor, payload, moment),
        )
        if self._held is not None and head is not None:
            self._held.append(event)  # not in the session: `write_held` writes it
        else:
            self.session.add(event)
        if head is not None:
            self._heads[case.id] = (seq, event.hash)
        case.updated_at = moment
        return event

    def first_event(
        self, case: Case, type_: str, actor: str, data: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        """The row of a new case's first event (its id comes when the case is written: see
        `storage.filing.Filings`), hash-chained from the genesis like any first event."""
        payload = dict(data)
        return {
            "seq": 1,
            "type": type_,
            "actor": actor,
            "data": payload,
            "at": at,
            "prev_hash": GENESIS,
            "hash": event_hash(GENESIS, case.code, 1, type_, actor, payload, at),
        }

    async def events(self, case: Case) -> list[CaseEvent]:
        rows = await self.session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
        )
        return list(rows)

    async def verify(self, case: Case) -> ChainCheck:
        return verify_chain(case.code, await self.events(case))


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    broken_at: int | None = None  # seq of the first event that does not match
    reason: str = ""


def verify_chain(code: str, events: list[CaseEvent]) -> ChainCheck:
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return ChainCheck(False, event.seq, f"event {expected_seq} is missing")
        if event.prev_hash != prev:
            return ChainCheck(False, event.seq, "does not link to the previous event")
        computed = event_hash(prev, code, event.seq, event.type, event.actor, event.data, event.at)
        if computed != event.hash:
            return ChainCheck(False, event.seq, "content was changed after it was written")
        prev = event.hash
    return ChainCheck(True)
