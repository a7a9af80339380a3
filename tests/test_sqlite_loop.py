"""SQLite statements on the event loop's thread (storage/sqlite_loop.py).

A session's statements run on the loop; long work (`off_the_loop()`, jobs marked `long`) keeps
aiosqlite's thread; waiting for another connection's write lock never happens on the loop; and
errors come out as they did when every statement went through the thread. Which thread ran a
statement is read from SQLite's own trace callback, called on the thread that runs it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, exc, text

from bot.backoffice.workers import Job, Wakeups, Workers
from storage import db as db_module
from storage.db import Database
from storage.sqlite_loop import off_the_loop

LOOP_THREAD = threading.get_ident  # called on the loop's thread by each test


class Traced:
    """Every statement SQLite ran, with the thread that ran it."""

    def __init__(self, database: Database) -> None:
        self.statements: list[tuple[int, str]] = []

        @event.listens_for(database.engine.sync_engine, "connect")
        def _trace(dbapi_connection: Any, _record: Any) -> None:
            raw: sqlite3.Connection = dbapi_connection.driver_connection._conn
            raw.set_trace_callback(self._ran)

    def _ran(self, sql: str) -> None:
        self.statements.append((threading.get_ident(), sql))

    def threads_of(self, start: str) -> list[int]:
        return [thread for thread, sql in self.statements if sql.upper().startswith(start)]

    def clear(self) -> None:
        self.statements.clear()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/loop.db")
    async with database.session() as session, session.begin():
        await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield database
    await database.dispose()


async def _write(database: Database, body: str, note_id: int | None = None) -> None:
    async with database.session() as session, session.begin():
        await session.execute(
            text("INSERT INTO notes (id, body) VALUES (:id, :body)"), {"id": note_id, "body": body}
        )


async def _count(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM notes"))).scalar_one())


def _blocker(path: Path) -> sqlite3.Connection:
    """Another process's connection (a `minyi` command) holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_sessions_statements_run_on_the_loops_thread(database: Database) -> None:
    traced = Traced(database)
    await database.dispose()  # a fresh connection, traced from its first statement
    await _write(database, "路灯坏了")
    assert await _count(database) == 1
    loop_thread = LOOP_THREAD()
    for start in ("BEGIN IMMEDIATE", "INSERT", "COMMIT", "SELECT"):
        assert traced.threads_of(start), start
        assert set(traced.threads_of(start)) == {loop_thread}, start


async def test_long_work_keeps_the_drivers_thread(database: Database) -> None:
    traced = Traced(database)
    await database.dispose()
    with off_the_loop():
        await _write(database, "统计")
        assert await _count(database) == 1
    loop_thread = LOOP_THREAD()
    for start in ("BEGIN IMMEDIATE", "INSERT", "COMMIT", "SELECT"):
        assert traced.threads_of(start), start
        assert loop_thread not in traced.threads_of(start), start
    # And the next ordinary session is back on the loop, on the same connection.
    traced.clear()
    await _write(database, "下一个")
    assert set(traced.threads_of("INSERT")) == {loop_thread}


async def test_a_long_job_runs_on_the_drivers_thread(database: Database) -> None:
    traced = Traced(database)
    await database.dispose()
    ran = asyncio.Event()

    async def sweep() -> int:
        await _write(database, "扫描")
        ran.set()
        return 0

    async def step() -> int:
        await _write(database, "一步")
        ran.set()
        return 0

    loop_thread = LOOP_THREAD()
    for long, expect_loop in ((True, False), (False, True)):
        traced.clear()
        ran.clear()
        workers = Workers((Job("job", 3600.0, sweep if long else step, long=long),), Wakeups())
        workers.start()
        await asyncio.wait_for(ran.wait(), 10)
        await workers.stop()
        assert traced.threads_of("INSERT")
        assert (set(traced.threads_of("INSERT")) == {loop_thread}) is expect_loop


async def test_another_connections_write_lock_does_not_freeze_the_loop(
    database: Database, tmp_path: Path
) -> None:
    """While a second connection holds the write lock, a session waits for it on the driver's
    thread under the busy timeout; the loop keeps running other tasks; once the lock is let go
    the write goes through and the session's later statements are back on the loop."""
    traced = Traced(database)
    await database.dispose()
    other = _blocker(tmp_path / "loop.db")
    try:
        writer = asyncio.create_task(_write(database, "等锁"))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20
        assert not writer.done()  # waiting for the lock, not failed and not through
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(writer, 30)
    loop_thread = LOOP_THREAD()
    begins = traced.threads_of("BEGIN IMMEDIATE")
    assert begins[0] == loop_thread  # tried on the loop, found the lock taken,
    assert begins[-1] != loop_thread  # and waited for it on the thread
    assert set(traced.threads_of("INSERT")) == {loop_thread}
    assert await _count(database) == 1


async def test_a_lock_held_past_the_busy_timeout_fails_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_MS", 200)
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/loop.db")
    try:
        async with database.session() as session, session.begin():
            await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        other = _blocker(tmp_path / "loop.db")
        try:
            ticker_ran = 0

            async def ticker() -> None:
                nonlocal ticker_ran
                while True:
                    await asyncio.sleep(0.01)
                    ticker_ran += 1

            ticking = asyncio.create_task(ticker())
            with pytest.raises(exc.OperationalError, match="database is locked"):
                await _write(database, "超时")
            ticking.cancel()
            assert ticker_ran > 0  # the loop ran while the session waited
        finally:
            other.rollback()
            other.close()
        await _write(database, "之后")  # the connection is still good
        assert await _count(database) == 1
    finally:
        await database.dispose()


async def test_an_integrity_error_on_the_loop_is_translated_and_rolled_back(
    database: Database,
) -> None:
    await _write(database, "第一", note_id=1)
    with pytest.raises(exc.IntegrityError) as raised:
        async with database.session() as session, session.begin():
            await session.execute(text("INSERT INTO notes (body) VALUES ('同一事务')"))
            await session.execute(text("INSERT INTO notes (id, body) VALUES (1, '重复')"))
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    assert await _count(database) == 1  # the transaction's first insert went with it
    await _write(database, "第二", note_id=2)
    assert await _count(database) == 2


async def test_a_session_cancelled_while_waiting_on_the_thread_leaves_nothing_behind(
    database: Database, tmp_path: Path
) -> None:
    """A cancelled task's BEGIN goes on waiting on the thread; the next session's statements
    queue behind it there rather than run beside it on the loop, and nothing of the cancelled
    session is kept or left holding the lock."""
    other = _blocker(tmp_path / "loop.db")
    try:
        cancelled = asyncio.create_task(_write(database, "取消"))
        await asyncio.sleep(0.1)
        cancelled.cancel()
        after = asyncio.create_task(_write(database, "之后"))
        # The cancelled session's clean-up queues behind the BEGIN that waits on the thread:
        # the other connection lets go independently, as another process would.
        await asyncio.sleep(0.05)
    finally:
        other.execute("COMMIT")
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(after, 30)
    async with database.session() as session:
        bodies = (await session.execute(text("SELECT body FROM notes"))).scalars().all()
    assert bodies == ["之后"]
    again = _blocker(tmp_path / "loop.db")  # the write lock is free
    again.execute("ROLLBACK")
    again.close()
