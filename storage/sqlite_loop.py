"""SQLite statements run on the event loop's own thread, except those of long work.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker thread and hands
the result back with `call_soon_threadsafe`: each call waits for a whole iteration of the event
loop. A form step's session is about seven statements, twenty such calls, and on SQLite every
task queues for the one connection (storage/db.py), so under load the single writer spent its
time waiting for loop iterations rather than in SQLite. A statement of a turn on a local file in
WAL mode takes microseconds: run on the loop, the session holds the writer only for its own
work (docs/wechat.md, "SQLite statements on the loop").

The rule:

- A session taken with `Database.session()` or `Database.reading()` runs its statements on the
  loop: turns, workers' batches and desk pages read or write a few rows found by key or index.
- Inside `off_the_loop()` they keep aiosqlite's thread: work whose size grows with the
  database (the statistics pages and `GET /api/v1/stats`, the daily rollup job) would freeze
  every request for its duration. Connections taken straight from the engine (migrations,
  backups, health pings) keep the thread too.
- Waiting never happens on the loop: there the busy timeout is 0, and a statement that finds
  the database locked by another connection (a `minyi` command, a second process) is run
  again on the thread under the full busy timeout, so the loop keeps serving while it waits.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

# Set by `Database.session()` for its body; `off_the_loop()` wins over it.
_ON_LOOP: ContextVar[bool] = ContextVar("minyi_sqlite_on_loop", default=False)
_LONG_WORK: ContextVar[bool] = ContextVar("minyi_sqlite_long_work", default=False)

# Calls that are run again on the thread when SQLite says the database is busy. A statement
# that fails with SQLITE_BUSY has changed nothing (statement-level atomicity) and a COMMIT that
# does leaves the transaction open: both may be tried again, as SQLite's docs say. With WAL and
# BEGIN IMMEDIATE the one statement that meets another writer is in practice the BEGIN. Other
# calls (executemany, fetches) raise as they would have once the busy timeout ran out.
_RETRIED = frozenset({"execute", "commit"})

# An inline statement longer than this is logged: it held every request up for its duration,
# and the work it belongs to should run `off_the_loop()`.
SLOW_ON_LOOP_SECONDS = 0.1


@contextlib.contextmanager
def off_the_loop() -> Iterator[None]:
    """Statements of the sessions taken in this block run on the driver's thread: for work
    that reads or writes more than a few rows (see the module's docstring)."""
    token = _LONG_WORK.set(True)
    try:
        yield
    finally:
        _LONG_WORK.reset(token)


@contextlib.contextmanager
def statements_on_loop() -> Iterator[None]:
    """Used by `Database.session()`: its statements run on the loop unless `off_the_loop()`."""
    token = _ON_LOOP.set(True)
    try:
        yield
    finally:
        _ON_LOOP.reset(token)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)


class LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the calling (event loop) thread when the
    task asked for it, and on aiosqlite's worker thread otherwise.

    Only one call is ever under way on a connection: SQLAlchemy awaits each and the pool lends
    the connection to one session at a time. A task cancelled while its call ran on the thread
    leaves that call running there, so a call goes on the loop only when the thread has finished
    everything it was given; otherwise it queues behind it on the thread.
    """

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy's dialect does for aiosqlite's own
        self._busy_ms = busy_ms  # the busy timeout for calls on the thread
        self._busy_now = busy_ms  # what the sqlite3 connection has now (its `timeout`)
        self._given = itertools.count(1)
        self._given_last = 0
        self._finished_last = 0  # written by the worker thread only

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not (_ON_LOOP.get() and not _LONG_WORK.get()):
            return await self._on_thread(fn, args, kwargs)
        if not self._running or self._connection is None or self._finished_last != self._given_last:
            return await self._on_thread(fn, args, kwargs)  # closed (raises as before) or busy
        self._set_busy_timeout(0)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not (_is_busy(exc) and getattr(fn, "__name__", "") in _RETRIED):
                raise
        finally:
            spent = time.perf_counter() - started
            if spent > SLOW_ON_LOOP_SECONDS:
                log.warning(
                    "an SQLite call held the event loop for %.0f ms (%s); run its work "
                    "off_the_loop()",
                    spent * 1000,
                    _what(fn, args),
                )
        return await self._on_thread(fn, args, kwargs)  # another connection holds the lock

    async def _on_thread(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        seq = next(self._given)
        self._given_last = seq

        def call() -> Any:
            try:
                self._set_busy_timeout(self._busy_ms)
                return fn(*args, **kwargs)
            finally:
                self._finished_last = seq

        return await super()._execute(call)

    def _set_busy_timeout(self, ms: int) -> None:
        # Only this class sets the busy timeout (sqlite3's `timeout` opens the connection at
        # `busy_ms`; no PRAGMA elsewhere), so `_busy_now` is what the connection has.
        if self._busy_now != ms and self._connection is not None:
            self._connection.execute(f"PRAGMA busy_timeout={int(ms)}")
            self._busy_now = ms


def _what(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """The call and the first words of its SQL: never its parameters (citizens' words)."""
    name = getattr(fn, "__name__", "call")
    if args and isinstance(args[0], str):
        return f"{name} {' '.join(args[0].split()[:4])}"
    return name


def loop_connector(
    connect_args: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]], busy_ms: int
) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine`: opens a `LoopConnection` with the
    arguments SQLAlchemy would have given sqlite3 (`connect_args()`), usable from both threads."""

    async def connect() -> LoopConnection:
        args, kwargs = connect_args()
        options = {**kwargs, "check_same_thread": False}
        connection = LoopConnection(partial(sqlite3.connect, *args, **options), busy_ms)
        await connection  # starts aiosqlite's thread, which opens the file
        return connection

    return connect
