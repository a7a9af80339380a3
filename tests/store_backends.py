"""Each conversation store with the back office's side of it, for tests that run on all of them.

The store is driven through its ports, as the Engine drives it. What the ports do not show is
the back office's business, done here per backend: moving a case on (closed, replied) and
reading what the back office was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from bot.app.wiring import Minyi, open_minyi
from conversation.ports import ConversationStore
from storage.conversations import DatabaseConversationStore, RedisConversationStore
from storage.memory import MemoryConversationStore
from storage.models import Case, CaseEvent, Identity, Notification, OutboxEntry, utcnow
from storage.proof import open_code

from .conftest import settings_for

TZ = ZoneInfo("Asia/Shanghai")
STORES = ("memory", "sqlite", "postgres", "postgres+redis")


class Backend(Protocol):
    store: ConversationStore

    def short_lived(self, ttl: timedelta, redelivery: timedelta | None = None) -> ConversationStore:
        """Another store on the same data whose state and handled messages last `ttl`, and
        the replies remembered for them `redelivery` (`ttl` too, unless given)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Let time pass for the store's expiry."""
        ...

    async def move_case(self, code: str, status: str, review_until: datetime | None = None) -> None:
        """The back office moves a case on (what its lifecycle API would do)."""
        ...

    async def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        """What the back office was sent, in order: (type, case code, data)."""
        ...

    async def unsubscribed(self, channel: str, sender: str) -> bool: ...

    async def texted_code(self) -> str:
        """The latest 验证码 as it would be texted (the SMS job's sealed code, opened)."""
        ...

    async def timeline(self, code: str) -> list[tuple[str, dict[str, Any]]]:
        """Every entry of the case's timeline, internal ones too: (type, data)."""
        ...


class MemoryBackend:
    def __init__(self) -> None:
        self.skew = timedelta()
        self.store = MemoryConversationStore(TZ, clock=self.now)

    def now(self) -> datetime:
        return utcnow() + self.skew

    def short_lived(
        self, ttl: timedelta, redelivery: timedelta | None = None
    ) -> MemoryConversationStore:
        store = MemoryConversationStore(
            TZ, lifetime=ttl, dedupe_ttl=ttl, redelivery=redelivery or ttl, clock=self.now
        )
        store.cases = self.store.cases
        return store

    async def pause(self, seconds: float) -> None:
        self.skew += timedelta(seconds=seconds)  # the clock moves; nobody waits

    async def move_case(self, code: str, status: str, review_until: datetime | None = None) -> None:
        records = self.store.cases.records
        case = records[code]
        records[code] = replace(
            case, status=status, review_due_at=review_until, version=case.version + 1
        )

    async def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(e.type, e.case, e.data) for e in self.store.cases.published]

    async def unsubscribed(self, channel: str, sender: str) -> bool:
        return (channel, sender) in self.store.cases.unsubscribed

    async def texted_code(self) -> str:
        codes = self.store.cases.proof_codes
        return codes[max(codes)].sent_code

    async def timeline(self, code: str) -> list[tuple[str, dict[str, Any]]]:
        return [(e.type, e.data) for e in self.store.cases.records[code].timeline]


class DatabaseBackend:
    def __init__(self, runtime: Minyi) -> None:
        self.runtime = runtime
        self.store = runtime.store

    def short_lived(self, ttl: timedelta, redelivery: timedelta | None = None) -> ConversationStore:
        rt, store = self.runtime, self.runtime.store
        ttls = {"lifetime": ttl, "dedupe_ttl": ttl, "redelivery": redelivery or ttl}
        if isinstance(store, RedisConversationStore):
            return RedisConversationStore(
                rt.db, rt.cipher, store.tz, store.redis, store.keys, **ttls
            )
        return DatabaseConversationStore(rt.db, rt.cipher, store.tz, **ttls)

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def move_case(self, code: str, status: str, review_until: datetime | None = None) -> None:
        async with self.runtime.db.session() as session, session.begin():
            await session.execute(
                update(Case)
                .where(Case.code == code)
                .values(status=status, review_due_at=review_until)
            )

    async def sent(self) -> list[tuple[str, str, dict[str, Any]]]:
        async with self.runtime.db.session() as session:
            rows = await session.scalars(select(OutboxEntry).order_by(OutboxEntry.seq))
            return [(e.type, e.case_code, dict(e.data)) for e in rows]

    async def unsubscribed(self, channel: str, sender: str) -> bool:
        async with self.runtime.db.session() as session:
            at = await session.scalar(
                select(Identity.unsubscribed_at).where(
                    Identity.channel == channel, Identity.external_id == sender
                )
            )
        return at is not None

    async def texted_code(self) -> str:
        async with self.runtime.units() as uow:
            job = await uow.session.scalar(
                select(Notification)
                .where(Notification.topic == "proof_sms")
                .order_by(Notification.id.desc())
                .limit(1)
            )
            assert job is not None and "sealed" in job.payload
            return open_code(uow, job.payload["sealed"])

    async def timeline(self, code: str) -> list[tuple[str, dict[str, Any]]]:
        async with self.runtime.db.session() as session:
            rows = await session.scalars(
                select(CaseEvent)
                .join(Case, Case.id == CaseEvent.case_id)
                .where(Case.code == code)
                .order_by(CaseEvent.seq)
            )
            return [(e.type, dict(e.data)) for e in rows]


@asynccontextmanager
async def open_backend(
    request: pytest.FixtureRequest, name: str, tmp_path: object
) -> AsyncIterator[Backend]:
    if name == "memory":
        yield MemoryBackend()
        return
    async with open_minyi(settings_for(request, name, tmp_path)) as runtime:
        yield DatabaseBackend(runtime)


@pytest.fixture(params=["sqlite", "postgres"], name="backend")
async def database_backend(
    request: pytest.FixtureRequest, tmp_path: object
) -> AsyncIterator[DatabaseBackend]:
    """`backend`: each database (SQLite, PostgreSQL) with its runtime, for tests of the rows a
    store writes. A test module imports it to use it."""
    async with open_backend(request, request.param, tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        yield opened


async def count(backend: DatabaseBackend, model: type) -> int:
    """How many rows `model`'s table holds."""
    async with backend.runtime.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
