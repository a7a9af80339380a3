"""The channels' SharedCache: small values with expiry and named locks, in Redis or the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import Integer, String, cast, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .db import Database
from .keys import Keys
from .models import KeyValue, utcnow


class LockTimeout(Exception):
    """A shared lock stayed taken longer than we may wait."""


class RedisShared:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def get(self, key: str) -> str | None:
        value = await self.redis.get(self.keys.shared(key))
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.redis.set(self.keys.shared(key), value, px=max(1, int(ttl * 1000)))

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(
            await self.redis.set(self.keys.shared(key), value, px=max(1, int(ttl * 1000)), nx=True)
        )

    async def count(self, key: str, ttl: float) -> int:
        name = self.keys.shared(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.pexpire(name, max(1, int(ttl * 1000)), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    @asynccontextmanager
    async def lock(self, key: str, seconds: float) -> AsyncIterator[None]:
        lock = self.redis.lock(
            self.keys.lock("shared:" + key), timeout=seconds, blocking_timeout=seconds, sleep=0.05
        )
        if not await lock.acquire():
            raise LockTimeout(key)
        try:
            yield
        finally:
            with suppress(LockError):
                await lock.release()


class DatabaseShared:
    """The embedded default. Locks are per process, plus a PostgreSQL advisory lock when several
    processes share PostgreSQL without Redis."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> str | None:
        async with self.db.session() as session:
            row = await session.scalar(select(KeyValue).where(KeyValue.key == key))
            if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
                return None
            return row.value

    async def set(self, key: str, value: str, ttl: float) -> None:
        expires = utcnow() + timedelta(seconds=ttl)
        async with self.db.session() as session, session.begin():
            await session.execute(delete(KeyValue).where(KeyValue.key == key))
            session.add(KeyValue(key=key, value=value, expires_at=expires))

    async def add(self, key: str, value: str, ttl: float) -> bool:
        now = utcnow()
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        async with self.db.session() as session, session.begin():
            await session.execute(
                delete(KeyValue).where(KeyValue.key == key, KeyValue.expires_at <= now)
            )
            result = await session.execute(
                insert(KeyValue)
                .values(key=key, value=value, expires_at=now + timedelta(seconds=ttl))
                .on_conflict_do_nothing(index_elements=["key"])
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def count(self, key: str, ttl: float) -> int:
        now = utcnow()
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        async with self.db.session() as session, session.begin():
            await session.execute(
                delete(KeyValue).where(KeyValue.key == key, KeyValue.expires_at <= now)
            )
            first = insert(KeyValue).values(
                key=key, value="1", expires_at=now + timedelta(seconds=ttl)
            )
            counted = first.on_conflict_do_update(
                index_elements=["key"],
                set_={"value": cast(cast(KeyValue.value, Integer) + 1, String)},
            ).returning(KeyValue.value)
            value = await session.scalar(counted)
        return int(value or 0)

    @asynccontextmanager
    async def lock(self, key: str, seconds: float) -> AsyncIterator[None]:
        local = self._locks.setdefault(key, asyncio.Lock())
        try:
            await asyncio.wait_for(local.acquire(), seconds)
        except TimeoutError:
            raise LockTimeout(key) from None
        try:
            if not self.db.is_postgres:
                yield
                return
            async with self.db.engine.connect() as conn:
                lock_id = select(func.hashtextextended("minyi:" + key, 0)).scalar_subquery()
                await asyncio.wait_for(
                    conn.execute(select(func.pg_advisory_lock(lock_id))), seconds
                )
                try:
                    yield
                finally:
                    await conn.execute(select(func.pg_advisory_unlock(lock_id)))
                    await conn.commit()
        finally:
            local.release()


async def purge_expired_values(db: Database) -> int:
    async with db.session() as session, session.begin():
        result = await session.execute(delete(KeyValue).where(KeyValue.expires_at <= utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


__all__ = ["DatabaseShared", "LockTimeout", "RedisShared", "purge_expired_values"]
