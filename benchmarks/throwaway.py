"""A throwaway, migrated database for one benchmark run: a SQLite file or a PostgreSQL database.

PostgreSQL is reached at MINYI_BENCH_POSTGRES_URL (default: the machine's `test` database as
`postgres`); a fresh database is created there, migrated, and dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage import migrate
from storage.db import Database

PG_ADMIN = os.environ.get(
    "MINYI_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """The URL of an empty, migrated database on `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            await _migrate(url)
            yield url
        return
    name = f"minyi_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        await _migrate(url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _migrate(url: str) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()
