"""The embedded store's turns on one kept SQLite connection (storage/db.py, `_kept`).

`Database.transaction()` checks its connection out once and keeps it between turns: what a turn
left uncommitted is rolled back as a return to the pool would, a connection found dead is
replaced, and sessions and other users of the pool are never kept waiting for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from storage.db import Database


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/kept.db")
    async with database.session() as session, session.begin():
        await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield database
    await database.dispose()


async def _note(database: Database, body: str) -> None:
    async with database.transaction() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
        await conn.commit()


async def _bodies(database: Database) -> list[str]:
    async with database.session() as session:
        return list((await session.scalars(text("SELECT body FROM notes ORDER BY id"))).all())


async def test_turns_check_the_connection_out_once(database: Database) -> None:
    checkouts: list[Any] = []
    event.listen(database.engine.sync_engine.pool, "checkout", lambda *a: checkouts.append(a))
    for n in range(5):
        await _note(database, f"turn {n}")
    assert len(checkouts) == 1
    assert await _bodies(database) == [f"turn {n}" for n in range(5)]


async def test_what_a_failed_turn_wrote_is_rolled_back(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('half done')"))
            raise RuntimeError("the turn failed")
    await _note(database, "next turn")  # would fail on "cannot start a transaction within one"
    assert await _bodies(database) == ["next turn"]


async def test_a_connection_found_dead_is_replaced(database: Database) -> None:
    await _note(database, "before")
    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await conn.invalidate()  # as storage.prebuilt does with a connection it lost
            raise RuntimeError("connection lost")
    await _note(database, "after")
    assert await _bodies(database) == ["before", "after"]


async def test_the_pool_is_not_kept_waiting_by_the_turns_connection(database: Database) -> None:
    await _note(database, "a turn")
    # A session, and a direct user of the engine (a schema check, a migration, a test), each get
    # a connection at once rather than after the pool's 60-second timeout.
    async with asyncio.timeout(5):
        assert await _bodies(database) == ["a turn"]
        async with database.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar() == 1


async def test_dispose_returns_the_kept_connection(database: Database) -> None:
    await _note(database, "a turn")
    pool = database.engine.sync_engine.pool
    assert pool.checkedout() == 1  # type: ignore[attr-defined]
    await database.dispose()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
