"""Conversation stores: state, re-delivery memory and per-conversation locks, DB or Redis.

Both give the engine the same unit of work per turn. In the embedded store the state and the
dedupe record are rows in the turn's own transaction, guarded by a version column. In the Redis
store they are written right after the database commit, while the turn still holds the
conversation's Redis lock; case filing stays idempotent by form id, so a state write lost
between the two cannot file a matter twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import timedelta, tzinfo
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import delete, func, select, update

from conversation.commands import Command, Results
from conversation.messages import Inbound, Reply
from conversation.ports import Conflict
from conversation.state import ConversationState

from .crypto import PiiCipher
from .db import Database
from .intake import CommandHandler
from .keys import Keys
from .lookups import CaseLookups
from .models import Conversation, InboundDedupe, utcnow
from .uow import UnitOfWork


class Busy(Exception):
    """The conversation stayed locked by another turn for longer than we may wait."""


def _seal_state(cipher: PiiCipher, state: ConversationState) -> bytes:
    return cipher.encrypt(json.dumps(state.to_json(), ensure_ascii=False), "conversation")


def _open_state(cipher: PiiCipher, blob: bytes, version: int = 0) -> ConversationState:
    return ConversationState.from_json(json.loads(cipher.decrypt(blob, "conversation")), version)


def _seal_replies(cipher: PiiCipher, replies: Sequence[Reply]) -> bytes:
    payload = json.dumps([r.to_json() for r in replies], ensure_ascii=False)
    return cipher.encrypt(payload, "replies")


def _open_replies(cipher: PiiCipher, blob: bytes) -> list[Reply]:
    return [Reply.from_json(item) for item in json.loads(cipher.decrypt(blob, "replies"))]


class StoreTurn:
    """One turn's unit of work: implements `conversation.ports.Turn`."""

    def __init__(self, store: ConversationStoreBase, uow: UnitOfWork) -> None:
        self.store = store
        self.uow = uow
        self.lookups = CaseLookups(uow)
        self._versions: dict[str, int] = {}
        self._after_commit: list[tuple[str, bytes, int]] = []

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        return await self.store._recall_in_turn(self, dedupe_key)

    async def load_state(self, key: str) -> ConversationState | None:
        return await self.store._load(self, key)

    async def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results:
        results = await CommandHandler(self.uow, self.store.tz).apply(commands, inbound)
        await self.uow.flush()
        return results

    async def save_state(self, key: str, state: ConversationState) -> None:
        await self.store._save(self, key, state)

    async def remember(self, dedupe_key: str, replies: Sequence[Reply]) -> None:
        await self.store._remember(self, dedupe_key, replies)

    async def commit(self) -> None:
        await self.uow.commit()
        await self.store._after_commit(self)


class ConversationStoreBase:
    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        tz: tzinfo,
        *,
        lifetime: timedelta = timedelta(hours=24),
        dedupe_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.tz = tz
        self.lifetime = lifetime
        self.dedupe_ttl = dedupe_ttl

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        raise NotImplementedError

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[StoreTurn]:
        async with UnitOfWork(self.db, self.cipher) as uow:
            yield StoreTurn(self, uow)

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        raise NotImplementedError

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        raise NotImplementedError

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        raise NotImplementedError

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        raise NotImplementedError

    async def _after_commit(self, turn: StoreTurn) -> None:
        return None


class DatabaseConversationStore(ConversationStoreBase):
    """The embedded default: everything in the database, one transaction per turn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locks: dict[str, _CountedLock] = {}

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # In-process only; other processes sharing the database are caught by the version column.
        entry = self._locks.setdefault(key, _CountedLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._locks.pop(key, None)

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        return None  # asked inside the turn instead, under the lock: one transaction, not two

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        session = turn.uow.session
        row = await session.scalar(select(InboundDedupe).where(InboundDedupe.key == dedupe_key))
        if row is None or row.expires_at <= utcnow():
            return None
        return _open_replies(self.cipher, row.replies)

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        session = turn.uow.session
        if self.db.is_postgres:
            # Processes sharing PostgreSQL without Redis: a transaction-scoped advisory lock makes
            # one conversation's turns wait for each other (SQLite's BEGIN IMMEDIATE does this).
            await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
        row = await session.scalar(select(Conversation).where(Conversation.key == key))
        turn._versions[key] = row.version if row else 0
        if row is None or row.expires_at <= utcnow():
            return None
        return _open_state(self.cipher, row.state, row.version)

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        session = turn.uow.session
        version = turn._versions.get(key, 0)
        sealed = _seal_state(self.cipher, state)
        expires = utcnow() + self.lifetime
        if version == 0:
            session.add(Conversation(key=key, state=sealed, version=1, expires_at=expires))
            await turn.uow.flush()
            return
        result = await session.execute(
            update(Conversation)
            .where(Conversation.key == key, Conversation.version == version)
            .values(state=sealed, version=version + 1, expires_at=expires)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"conversation {key} changed under this turn")

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        session = turn.uow.session
        # An expired record of the same id may linger until the purge: replace only that. A live
        # one means another process answered this message first; the insert then conflicts and
        # the engine's retry finds that answer.
        now = utcnow()
        await session.execute(
            delete(InboundDedupe).where(
                InboundDedupe.key == dedupe_key, InboundDedupe.expires_at <= now
            )
        )
        session.add(
            InboundDedupe(
                key=dedupe_key,
                replies=_seal_replies(self.cipher, replies),
                expires_at=utcnow() + self.dedupe_ttl,
            )
        )
        await turn.uow.flush()


class _CountedLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class RedisConversationStore(ConversationStoreBase):
    """Production: state, dedupe and locks in Redis, shared by every web process."""

    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        tz: tzinfo,
        redis: Redis,
        keys: Keys,
        *,
        lock_ttl: float = 30.0,
        lock_wait: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(db, cipher, tz, **kwargs)
        self.redis = redis
        self.keys = keys
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock = self.redis.lock(
            self.keys.lock(key), timeout=self.lock_ttl, blocking_timeout=self.lock_wait, sleep=0.01
        )
        if not await lock.acquire():
            raise Busy(f"conversation {key} is busy")
        try:
            yield
        finally:
            # LockError: it expired while we worked and the next turn already owns it.
            with suppress(LockError):
                await lock.release()

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        blob = cast(bytes | None, await self.redis.get(self.keys.seen(dedupe_key)))
        return _open_replies(self.cipher, blob) if blob else None

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        return None  # the engine already asked under the Redis lock, which every process shares

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        blob = cast(bytes | None, await self.redis.get(self.keys.conversation(key)))
        return _open_state(self.cipher, blob) if blob else None

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        ttl = int(self.lifetime.total_seconds())
        turn._after_commit.append(
            (self.keys.conversation(key), _seal_state(self.cipher, state), ttl)
        )

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        ttl = int(self.dedupe_ttl.total_seconds())
        turn._after_commit.append(
            (self.keys.seen(dedupe_key), _seal_replies(self.cipher, replies), ttl)
        )

    async def _after_commit(self, turn: StoreTurn) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, value, ttl in turn._after_commit:
                pipe.set(name, value, ex=ttl)
            await pipe.execute()
        turn._after_commit.clear()


async def purge_expired(db: Database) -> int:
    """Drop conversation and dedupe rows past their expiry (the embedded store's TTL)."""
    now = utcnow()
    async with db.session() as session, session.begin():
        a = await session.execute(delete(Conversation).where(Conversation.expires_at <= now))
        b = await session.execute(delete(InboundDedupe).where(InboundDedupe.expires_at <= now))
    return int(a.rowcount or 0) + int(b.rowcount or 0)  # type: ignore[attr-defined]
