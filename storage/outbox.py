"""The transactional outbox: events for the back office, committed with the change they report."""

from __future__ import annotations

import json
import uuid
from datetime import tzinfo
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .crypto import PiiCipher
from .models import OutboxEntry, utcnow
from .times import iso

# The stream types of CONTRACTS.md; anything else is refused so a typo cannot reach consumers.
EVENT_TYPES = frozenset(
    {
        "case.submitted",
        "case.updated",
        "case.rated",
        "case.review_requested",
        "handoff.requested",
        "deadline.warning",
        "deadline.missed",
    }
)


class Outbox:
    def __init__(
        self, session: AsyncSession, cipher: PiiCipher, touched: set[str], tz: tzinfo
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.tz = tz
        self.touched = touched  # the unit of work's: the relay is woken after the commit
        self._held: list[OutboxEntry] | None = None

    def hold(self) -> None:
        """Keep what is added from now on for `write_held`: many in one INSERT (a batch)."""
        if self._held is None:
            self._held = []

    async def write_held(self) -> None:
        """Write the held entries in one INSERT (executemany), in the order they were added,
        with the values the flush would give them."""
        held, self._held = self._held, None
        if held:
            table = OutboxEntry.__table__
            assert isinstance(table, Table)
            now = utcnow()
            await self.session.execute(
                insert(table),
                [
                    {
                        "id": e.id,
                        "type": e.type,
                        "case_code": e.case_code,
                        "data": e.data,
                        "private_enc": e.private_enc,
                        "created_at": now,
                        "published_at": None,
                        "position": None,
                        "attempts": 0,
                    }
                    for e in held
                ],
            )

    def entry(
        self,
        type_: str,
        case_code: str,
        data: dict[str, Any],
        private: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The row of an event to queue, for a caller that writes it itself in the same
        transaction (a filing: `storage.filing.Filings`); the relay is woken after the commit."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        self.touched.add("outbox")
        return {
            "id": str(uuid.uuid4()),
            "type": type_,
            "case_code": case_code,
            "data": data,
            "private_enc": self._seal(private),
            "created_at": utcnow(),
            "published_at": None,
            "position": None,
            "attempts": 0,
        }

    def _seal(self, private: dict[str, Any] | None) -> bytes | None:
        if not private:
            return None
        return self.cipher.encrypt(json.dumps(private, ensure_ascii=False), "outbox")

    async def add(
        self,
        type_: str,
        case_code: str = "",
        data: dict[str, Any] | None = None,
        private: dict[str, Any] | None = None,
    ) -> OutboxEntry:
        """Queue an event; `private` keys (personal data) are stored encrypted and merged on read."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        self.touched.add("outbox")
        sealed = self._seal(private)
        entry = OutboxEntry(
            id=str(uuid.uuid4()),
            type=type_,
            case_code=case_code,
            data=data or {},
            private_enc=sealed,
        )
        if self._held is not None:
            self._held.append(entry)  # not in the session: `write_held` writes it
        else:
            self.session.add(entry)  # written with the unit of work's next flush
        return entry

    async def after(self, position: int, limit: int) -> list[OutboxEntry]:
        """The feed of `GET /api/v1/events`: published entries after `position`, in feed order."""
        rows = await self.session.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.position > position)
            .order_by(OutboxEntry.position)
            .limit(limit)
        )
        return list(rows)

    async def claim_unpublished(self, limit: int, *, skip_locked: bool) -> list[OutboxEntry]:
        """Oldest unpublished entries, locked for this relay on PostgreSQL so relays never overlap."""
        query = (
            select(OutboxEntry)
            .where(OutboxEntry.published_at.is_(None))
            .order_by(OutboxEntry.seq)
            .limit(limit)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        return list(await self.session.scalars(query))

    def data(self, entry: OutboxEntry) -> dict[str, Any]:
        """The event's data as consumers get it, personal data decrypted back in place."""
        if not entry.private_enc:
            return dict(entry.data)
        return {**entry.data, **json.loads(self.cipher.decrypt(entry.private_enc, "outbox"))}

    def to_json(self, entry: OutboxEntry) -> dict[str, Any]:
        """An entry as the events API carries it (the stream has the same fields, flat)."""
        return {
            "id": entry.id,
            "seq": entry.position,
            "type": entry.type,
            "case": entry.case_code,
            "data": self.data(entry),
            "created_at": iso(entry.created_at, self.tz),
        }
