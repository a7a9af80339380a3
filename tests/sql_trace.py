"""The SQL a database runs, as text, for tests that count statements.

Through SQLAlchemy's `before_cursor_execute` on PostgreSQL. On SQLite the conversation store runs
its statements on the driver's connection, below SQLAlchemy (storage/conversations.py `_Driven`),
so they are read from sqlite3's own trace callback instead, which sees every statement
(BEGIN IMMEDIATE and COMMIT included) whichever way it came.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event

from storage.db import Database


@asynccontextmanager
async def statements(db: Database) -> AsyncIterator[list[str]]:
    """Within the block, each statement run, upper-cased with its whitespace collapsed."""
    said: list[str] = []

    def add(statement: str) -> None:
        said.append(" ".join(statement.split()).upper())

    if db.is_sqlite:
        # The pool's one connection: the one every turn uses.
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            sqlite = raw.driver_connection._conn  # type: ignore[union-attr]
        sqlite.set_trace_callback(add)
        try:
            yield said
        finally:
            sqlite.set_trace_callback(None)
        return

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        add(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield said
    finally:
        event.remove(engine, "before_cursor_execute", record)
