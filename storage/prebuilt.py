"""Statements compiled once and run on the driver's own connection, for the hottest ones.

For the statements a chat runs on every turn of the embedded store, on every submit and every
进度查询 — a conversation's state, the repeat question's look at the asker's cases, the filing —
SQLAlchemy's way through a statement (the compiled cache's key, a parameter dict run through
the binds, an execution context, a cursor, a result object, a greenlet switch each way) cost
more CPU than the driver's round trip itself (docs/wechat.md, fifth round).

What SQLAlchemy's way does that matters is kept: the same SQL and conversions (its compiler's
and its types'), the connection's transaction begun first as the driver adapter would
(PostgreSQL's BEGIN is sent with the first statement; SQLite's BEGIN IMMEDIATE is `Database`'s
"begin" listener's), the adapter's lock, asyncpg's prepared statement cache, storage.sqlite_loop's
rules, `before_cursor_execute` listeners (statement counts, tests), and errors raised as
SQLAlchemy's (`IntegrityError` → the unit of work's `Conflict`; a connection found dead
invalidated, so the work runs again).

It reaches into the adapters SQLAlchemy 2.1 ships (asyncpg's and aiosqlite's), hence the
pinned minor version; tests/test_prebuilt.py runs each statement both ways and compares SQL,
parameters and rows, so a release that changes them fails there first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable


class Ran(NamedTuple):
    """A statement's rows (none for one that returns none) and how many rows it wrote."""

    rows: list[tuple[Any, ...]]
    written: int


class Prebuilt:
    """A Core statement compiled once per dialect and run on the driver's own connection: its
    SQL, the order of its parameters and their conversions (and its columns') worked out once
    (the module's docstring says what is kept of SQLAlchemy's way)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._built: dict[str, _Built] = {}

    def _for(self, dialect: Dialect) -> _Built:
        built = self._built.get(dialect.name)
        if built is None:
            built = self._built[dialect.name] = _Built(self.statement, dialect)
        return built

    async def rows(
        self, connection: AsyncConnection, params: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows the statement returns (none for a statement that returns none)."""
        return (await self.run(connection, params)).rows

    async def written(self, connection: AsyncConnection, params: Mapping[str, Any]) -> int:
        """How many rows the statement inserted, updated or deleted."""
        return (await self.run(connection, params)).written

    async def run(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Ran:
        """The statement's rows and how many rows it wrote."""
        sync = connection.sync_connection
        assert sync is not None
        dialect = sync.dialect
        built = self._for(dialect)
        args = built.args(params)
        if sync._has_events or sync.engine._has_events:
            sync.dispatch.before_cursor_execute(sync, None, built.sql, args, None, False)
        # The pooled connection as the session holds it (asked without a greenlet switch
        # unless it was invalidated, when SQLAlchemy's own way reconnects or refuses).
        fairy = await connection.get_raw_connection() if sync.invalidated else sync.connection
        adapted = fairy.dbapi_connection
        try:
            if dialect.name == "postgresql":
                raw, written = await _pg_run(adapted, built.sql, args)
            else:
                raw, written = await _sqlite_run(adapted, built.sql, args)
        except _Lost as lost:
            error = lost.error
            raise await _wrapped(connection, dialect, built.sql, error, lost=True) from error
        except Exception as error:
            raise await _wrapped(connection, dialect, built.sql, error) from error
        processors = built.columns
        if not any(processors):
            return Ran([tuple(row) for row in raw], written)
        converted = [
            tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True))
            for row in raw
        ]
        return Ran(converted, written)


class _Built:
    """A statement compiled for one dialect: its SQL, its parameters' names in order with
    their defaults and conversions, and its columns' conversions."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        # Lists rendered anew on each run ("expanding", literal) have no one SQL to keep.
        assert not compiled.literal_execute_params and not compiled.post_compile_params
        self.sql = str(compiled)
        names = compiled.positiontup or []
        processors = compiled._bind_processors
        self.binds: list[tuple[str, Callable[[Any], Any] | None, bool, Any, Any]] = []
        for name in names:
            processor = processors.get(name)
            # What None becomes (None for most types; JSON's null for a JSON column): a filing
            # binds some twenty empty times and numbers, each a call through its type for None.
            none = processor(None) if processor is not None else None
            bind = compiled.binds[name]
            self.binds.append((name, processor, bind.required, bind.effective_value, none))
        self.columns: list[Callable[[Any], Any] | None] = [
            type_._cached_result_processor(dialect, None) for *_, type_ in compiled._result_columns
        ]

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The parameters in the SQL's order, converted as SQLAlchemy converts them (every
        value, None too: a JSON column's None is JSON's null); a required one missing is a
        KeyError, as SQLAlchemy refuses it too."""
        out = []
        for name, processor, required, default, none in self.binds:
            value = params[name] if required or name in params else default
            if processor is not None:
                value = none if value is None else processor(value)
            out.append(value)
        return tuple(out)


async def _pg_run(adapted: Any, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
    # As the asyncpg adapter's cursor runs a statement (sqlalchemy's asyncpg.py,
    # `_prepare_and_execute`), less the cursor and the result around it.
    async with adapted._execute_mutex:
        if adapted._transaction is None:
            try:
                await adapted._start_transaction()  # nothing on an autocommit connection
            except Exception as error:  # already the adapter's own (DB-API) error
                raise _Lost(error) from error
        try:
            prepared, _ = await adapted._prepare(sql, 0)
            rows = list(await prepared.fetch(*args))
            return rows, _written(prepared.get_statusmsg())
        except Exception as error:
            try:
                adapted._handle_exception(error)  # raises the adapter's own (DB-API) error
            except Exception as translated:
                if type(error).__name__ == "InternalClientError":
                    raise _Lost(translated) from error
                raise
            raise


async def _sqlite_run(adapted: Any, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
    # As the aiosqlite adapter's cursor does (sqlalchemy's connectors/asyncio.py), in one call
    # of the connection instead of four (cursor, execute, fetch, close), each of which is a
    # trip through aiosqlite and `storage.sqlite_loop`; that one call keeps their rules (on the
    # loop or on the thread, a busy statement run again on the thread). The transaction is
    # the one `Database`'s "begin" listener opened (BEGIN IMMEDIATE).
    async with adapted._execute_mutex:
        aio = adapted._connection
        return cast(tuple[list[Any], int], await aio._execute(execute, aio, sql, args))


def execute(aio: Any, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
    """One statement on an aiosqlite connection's sqlite3 connection: its rows and how many
    rows it wrote. Named
    `execute`: `storage.sqlite_loop` runs a statement again on its thread when SQLite was busy
    only for calls of that name (a statement that failed busy has changed nothing)."""
    cursor = aio._conn.execute(sql, args)
    try:
        rows = cursor.fetchall() if cursor.description else []
        return rows, cursor.rowcount
    finally:
        cursor.close()


# PostgreSQL's command tag ("INSERT 0 1", "UPDATE 3", "SELECT 2") read as the asyncpg adapter
# reads it for `rowcount`.
_TAG = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def _written(status: str | None) -> int:
    """The rows a statement wrote (or returned), from its command tag; -1 when it says none."""
    tag = _TAG.match(status or "")
    return int(tag.group(1)) if tag else -1


class _Lost(Exception):
    """The connection is no longer usable: its BEGIN failed, or asyncpg's protocol is out of
    step with the server (asyncpg's `InternalClientError`)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _wrapped(
    connection: AsyncConnection, dialect: Dialect, sql: str, error: Exception, lost: bool = False
) -> BaseException:
    """`error` as SQLAlchemy would raise it, the connection invalidated when it was lost.

    `lost`: the BEGIN failed, or asyncpg's protocol is out of step, neither of which a live
    connection does. The case seen: a connection the server dropped while it sat in the pool
    (a restart), whose goodbye asyncpg had read but not yet the closed socket, refuses the
    next statement or BEGIN with "another operation is in progress" rather than "connection
    is closed". Nothing can be done on it: dropped, and the work runs again on a fresh one
    (the unit of work's `Conflict`, `Reading`'s too), as for any dead connection; nothing
    was committed on it (a commit is not a prebuilt statement)."""
    dbapi = dialect.loaded_dbapi
    if not isinstance(error, dbapi.Error):
        return error
    lost = lost or dialect.is_disconnect(error, None, None)
    if lost:
        await connection.invalidate(error)
    return DBAPIError.instance(
        sql, None, error, dbapi.Error, hide_parameters=True, connection_invalidated=lost
    )
