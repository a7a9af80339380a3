"""One async engine and session factory per process, tuned for SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from .prebuilt import execute
from .sqlite_loop import loop_connector, statements_on_loop

log = logging.getLogger(__name__)

# SQLite's busy timeout for statements run on the driver's thread: how long one waits for another
# process (a `minyi` command) holding the write lock. On the event loop it is 0 (sqlite_loop.py).
SQLITE_BUSY_MS = 30_000

# Older pooled connections are closed rather than handed out: shorter than the idle timeouts of
# the proxies and firewalls usually found between an application and its database.
RECYCLE_SECONDS = 300

# PostgreSQL connections a process keeps: all it may open, kept once opened. With 20 kept and
# 10 more opened for a burst, every burst past 20 turns at once opened the 10 and closed them as
# they came back, each ~2.6 ms of CPU here and a backend forked by PostgreSQL: with 64 citizens
# at each step at once a submit cost 1.38–1.50 ms of CPU and a 进度查询 0.78–0.92, against
# 1.03–1.04 and 0.45–0.52 with 30 kept (`benchmarks/walk_steps.py --citizens 2048
# --together 64`). At most 30 a process, as before: 3 processes stay under PostgreSQL's default
# max_connections of 100 (docs/deploying.md); past 30 at once a turn waits for a connection.
POOL_SIZE = 30
POOL_OVERFLOW = 0


class Database:
    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = make_url(url)
        # SQL parameters are citizens' words, names and phones: never in an exception's text.
        options: dict[str, Any] = {"hide_parameters": True}
        if self.is_sqlite:
            # SQLite has one writer. In one process, queue for it here (first come, first
            # served, no sleeping) rather than in SQLite's busy handler, which sleeps in growing
            # steps and makes the slowest turns seconds long. The busy timeout still covers
            # other processes sharing the file. Code must never open a second session while
            # holding one (it would wait for itself).
            options.update(pool_size=1, max_overflow=0, pool_timeout=60)
        else:
            # No ping per checkout: it cost three round trips (BEGIN, SELECT, ROLLBACK) before
            # every transaction. Connections are recycled instead, and a unit of work whose
            # connection turns out dead before it commits is retried (storage/uow.py).
            options.update(
                pool_size=pool_size, max_overflow=POOL_OVERFLOW, pool_recycle=RECYCLE_SECONDS
            )
        if self.is_sqlite:
            _private_file(self.url.database)
            # The connection SQLAlchemy would open, as one whose statements can run on the loop
            # (storage/sqlite_loop.py); the URL's own options still apply.
            options["async_creator"] = loop_connector(self._sqlite_connect_args, SQLITE_BUSY_MS)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The same pool, its connections handed out in autocommit (reads outside a transaction):
        # set as they are checked out, rather than by `execution_options` on each, which cost
        # ~10–25 µs of a read's ~120 µs checkout.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        # The pool hands its one SQLite connection to whoever asks when it comes back, which can
        # starve a task that has waited long; an asyncio.Lock queues newcomers behind waiters.
        self._turns = asyncio.Lock() if self.is_sqlite else None

    def _sqlite_connect_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        return tuple(args), {**kwargs, "timeout": SQLITE_BUSY_MS / 1000}

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; on SQLite, taken in turn (first come, first served) by every task, its
        statements run on the event loop's thread unless the caller is `off_the_loop()`
        (storage/sqlite_loop.py has the rule): the one connection is then held only for the
        time SQLite works, not for a loop iteration per call."""
        if self._turns is None:
            async with self.sessions() as session:
                yield session
            return
        with statements_on_loop():
            async with self._turns, self.sessions() as session:
                yield session

    @asynccontextmanager
    async def transaction(self, *, reads_first: bool = False) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction (on SQLite, `BEGIN IMMEDIATE`), with no ORM
        session around it: taken in turn and run on the loop like a session's. The caller
        commits it; otherwise it is rolled back when the block ends. A unit of work can join it
        (`UnitOfWork(..., connection=)`), so its writes share the transaction.

        `reads_first` (PostgreSQL): no transaction yet — each statement commits on its own,
        without the round trips of BEGIN and COMMIT — until `begin_writes`. For a caller that
        reads, then writes either several statements (after `begin_writes`) or one, which is
        atomic on its own. The connection goes back to the pool in its usual mode."""
        if self._turns is None:
            async with (self._autocommit if reads_first else self.engine).connect() as conn:
                if not reads_first:
                    await conn.begin()
                yield conn
            return
        if reads_first:
            raise ValueError("reads_first is for PostgreSQL: SQLite's writer is taken at BEGIN")
        with statements_on_loop():
            async with self._turns, self.engine.connect() as conn:
                await conn.begin()
                yield conn

    async def begin_writes(self, conn: AsyncConnection) -> None:
        """The transaction of a `transaction(reads_first=True)` connection, from its next
        statement on (the database's usual isolation again, then BEGIN with that statement)."""
        if conn.in_transaction():
            # SQLAlchemy's own record of one, begun by a Core statement run one by one: what
            # it ran has committed already, and the isolation cannot change while it is open.
            await conn.commit()
        await conn.execution_options(isolation_level=conn.default_isolation_level)
        await conn.begin()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only, outside any transaction: each query one round trip, with
        no BEGIN and ROLLBACK around it. Nothing written through it is kept."""
        if self._turns is not None:
            # SQLite: its one connection, taken in turn like any session's.
            async with self.session() as session:
                yield session
            return
        async with self.read_connection() as conn, AsyncSession(bind=conn) as session:
            yield session

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """`reading` without the ORM session around it, for reads built as Core statements."""
        if self._turns is not None:
            async with self.session() as session:
                yield await session.connection()
            return
        async with self._autocommit.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _private_file(database: str | None) -> None:
    """A new SQLite file is made 0600 before SQLite opens it, like the key beside it: it holds
    descriptions, addresses and openids. SQLite gives its -wal and -shm files the database
    file's mode. An existing file open to others is only warned about (its owner chose it)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "database file %s is readable by others (mode %o); run chmod 600", path, mode
            )
    except OSError:
        return  # a directory that does not exist: SQLite will say so when it connects


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL for concurrent readers; BEGIN IMMEDIATE so writers queue instead of failing.

    A deferred SQLite transaction that reads and then writes can fail at once with "database is
    locked" when another writer got there first; taking the write lock at BEGIN makes the busy
    timeout apply. The driver's own BEGIN is switched off so ours is the only one.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver, as storage.prebuilt runs a statement (on the loop or the thread by
        # storage.sqlite_loop's rules, busy run again on the thread): `exec_driver_sql`'s
        # cursor, context and result cost an embedded turn a tenth of its CPU. Listeners,
        # errors and invalidation stay SQLAlchemy's.
        if conn._has_events or conn.engine._has_events:
            conn.dispatch.before_cursor_execute(conn, None, _BEGIN, (), None, False)
        adapted = conn.connection.dbapi_connection
        try:
            try:
                await_only(adapted._connection._execute(execute, adapted._connection, _BEGIN, ()))
            except Exception as error:
                adapted._handle_exception(error)  # raises it as the adapter's DB-API error
        except Exception as error:
            conn._handle_dbapi_exception(error, _BEGIN, (), None, None)


_BEGIN = "BEGIN IMMEDIATE"
