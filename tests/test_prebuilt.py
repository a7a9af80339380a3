"""The submit's statements run prebuilt on the driver's connection (storage/prebuilt.py
`Prebuilt`): the same SQL, parameters and rows as SQLAlchemy's own way, in the unit of work's
transaction, counted by `before_cursor_execute`, and failing as SQLAlchemy's statements fail
(a repeated code is a `Conflict`, a lost connection a `Conflict` that the next turn survives)."""

from __future__ import annotations

import threading
from typing import Any

import asyncpg
import pytest
from sqlalchemy import JSON, Integer, bindparam, event, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.repeats import RepeatRules
from conversation.ports import Conflict
from conversation.similarity import similarity
from storage import cases as cases_module
from storage import prebuilt as prebuilt_module
from storage.cases import Cases
from storage.filing import Filer, file_case
from storage.models import Case, CaseEvent, Citizen, Identity, OutboxEntry, UTCDateTime, utcnow
from storage.prebuilt import Prebuilt, Ran
from storage.sqlite_loop import off_the_loop

from .store_backends import (
    DatabaseBackend,
    count,
    database_backend,  # noqa: F401 (the `backend` fixture)
    open_backend,
)
from .test_database_connections import _cut_every_connection
from .test_store_contract import applied, filing, said

PHONE = "+8613800138000"


async def test_the_sql_parameters_and_rows_are_sqlalchemys_own(
    backend: DatabaseBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every prebuilt statement of a filing and of the repeat question, run first SQLAlchemy's
    way (in a savepoint, rolled back) and then prebuilt, at the same point of the same
    transaction: the driver is handed the same SQL and parameters (JSON, times, bytes, None
    converted alike), and the rows come back the same (zone-aware times, parsed JSON)."""
    await applied(backend.store, said(), filing("webchat:c1:a", name="张三", phone=PHONE))
    compared: list[str] = []
    original = Prebuilt.run

    async def both(self: Prebuilt, connection: AsyncConnection, params: dict[str, Any]) -> Ran:
        sent: list[tuple[str, Any]] = []

        def record(_conn: object, _cursor: object, sql: str, args: Any, *_: object) -> None:
            sent.append((sql, args))

        engine = connection.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            savepoint = await connection.begin_nested()
            result = await connection.execute(self.statement, params)
            theirs = [tuple(row) for row in result] if result.returns_rows else []
            written = result.rowcount
            await savepoint.rollback()
            ours, ran = await original(self, connection, params)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        sql = [s for s, _ in sent if not s.startswith(("SAVEPOINT", "ROLLBACK TO"))]
        args = [tuple(a) for s, a in sent if not s.startswith(("SAVEPOINT", "ROLLBACK TO"))]
        assert len(sql) == 2 and sql[0] == sql[1] and args[0] == args[1]
        if sql[0].startswith("SELECT"):
            assert ours == theirs
        else:  # new ids: PostgreSQL's sequences are not rolled back with the savepoint
            assert [[type(v) for v in row] for row in ours] == [
                [type(v) for v in row] for row in theirs
            ]
        if not sql[0].startswith("SELECT"):
            assert ran == written  # rows written, as SQLAlchemy's rowcount says
        compared.append(sql[0].split()[0])
        return Ran(ours, ran)

    monkeypatch.setattr(Prebuilt, "run", both)
    # A new form of the same asker: the repeat question's look finds the first case.
    async with backend.store.turn() as turn:
        similar = await turn.lookups.similar_open_case(
            "webchat",
            "c1",
            "petition",
            "city",
            "小区门口的路灯坏了一个多月",
            RepeatRules(),
            similarity,
        )
        assert similar is not None and similar.created_at.tzinfo is not None
        await turn.apply([filing("webchat:c1:b", name="张三", phone=PHONE)], said())
        await turn.commit()
    # The look and the filing (one statement on PostgreSQL; citizen, identity, its id, the
    # case, the event and the outbox entry on SQLite).
    assert len(compared) == (2 if backend.runtime.db.is_postgres else 7)
    assert [await count(backend, m) for m in (Case, CaseEvent, OutboxEntry, Citizen)] == [
        2,
        2,
        2,
        1,
    ]


async def test_a_filing_left_uncommitted_leaves_nothing(backend: DatabaseBackend) -> None:
    """The filing's statement, the first of its unit of work, runs inside the unit of work's
    transaction (PostgreSQL's BEGIN sent first, as SQLAlchemy's adapter would): not committed,
    nothing of it is kept — not the case, its event, its outbox entry, nor the citizen."""
    deadlines = LegalDeadlines(backend.runtime.settings.tz())
    filer = Filer("webchat", "c1", "citizen:webchat", link=True)
    async with backend.runtime.units() as uow:
        case = await file_case(uow, deadlines, filing(name="张三", phone=PHONE), filer)
        assert case is not None and case.id
        assert (await uow.session.scalar(select(func.count()).select_from(Case))) == 1
    models = (Case, CaseEvent, OutboxEntry, Citizen, Identity)
    assert [await count(backend, m) for m in models] == [0] * 5


async def test_a_repeated_code_is_a_conflict_and_writes_nothing(
    backend: DatabaseBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-in-a-billion repeat of a case code: the unique index refuses it, the driver's
    error comes back as SQLAlchemy's IntegrityError, so the unit of work says Conflict (and
    the turn runs again under a fresh code); the connection is fine for the next filing."""
    first = await applied(backend.store, said(), filing("webchat:c1:a"))
    assert first.case_code
    monkeypatch.setattr(Cases, "new_code", lambda self, day: first.case_code)
    with pytest.raises(Conflict):
        await applied(backend.store, said("c2"), filing("webchat:c2:a", phone=PHONE))
    monkeypatch.undo()
    assert [await count(backend, m) for m in (Case, CaseEvent, OutboxEntry)] == [1, 1, 1]
    again = await applied(backend.store, said("c2"), filing("webchat:c2:a", phone=PHONE))
    assert again.case_code and again.case_code != first.case_code


async def test_the_statements_are_counted_as_sqlalchemys_are(backend: DatabaseBackend) -> None:
    """`before_cursor_execute` hears each prebuilt statement, with its SQL and parameters (the
    benchmarks count statements by it; tests read the plans of the SQL it gives)."""
    engine = backend.runtime.db.engine.sync_engine
    heard: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        heard.append(sql.lstrip().split()[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        await applied(backend.store, said(), filing(name="张三", phone=PHONE))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # PostgreSQL: one WITH … statement; SQLite: citizen, identity, case, event, outbox.
    filing_statements = [s for s in heard if s in ("WITH", "INSERT")]
    assert len(filing_statements) == (1 if backend.runtime.db.is_postgres else 5)


async def test_the_connection_is_asked_again_in_a_new_transaction(
    backend: DatabaseBackend,
) -> None:
    """`Cases` keeps the session's connection for the transaction it was asked in only."""
    async with backend.runtime.units() as uow:
        first = await uow.cases._connection()
        assert await uow.cases._connection() is first
        await uow.session.rollback()
        await uow.cases.of_identity("webchat", "c1")
        assert await uow.cases._connection() is await uow.session.connection()
        assert uow.session.in_transaction()


async def test_a_lost_connection_is_a_conflict_and_the_next_turn_works(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """PostgreSQL dropped the pooled connections (a restart): the prebuilt statement's error
    invalidates the connection and is a Conflict (the turn runs again on a fresh one), as a
    statement run SQLAlchemy's way is."""
    async with open_backend(request, "postgres", tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        runtime = opened.runtime
        await applied(opened.store, said(), filing("webchat:c1:a"))
        assert await _cut_every_connection(runtime.settings.database_url) >= 1
        with pytest.raises(Conflict):
            async with runtime.units() as uow:
                await uow.cases.of_identity("webchat", "c1")
        async with runtime.units() as uow:
            assert len(await uow.cases.of_identity("webchat", "c1")) == 1
            assert (await uow.session.execute(text("SELECT 1"))).scalar_one() == 1
        # And a filing as the first statement of a turn on a dropped connection.
        assert await _cut_every_connection(runtime.settings.database_url) >= 1
        with pytest.raises(Conflict):
            await applied(opened.store, said("c2"), filing("webchat:c2:a"))
        assert (await applied(opened.store, said("c2"), filing("webchat:c2:a"))).case_code


def test_lists_rendered_anew_each_run_are_refused() -> None:
    """An expanding IN list has no one SQL to keep: refused when first built, not run wrong."""
    statement = select(Case.id).where(Case.code.in_(bindparam("codes", expanding=True)))
    with pytest.raises(AssertionError):
        Prebuilt(statement)._for(postgresql.asyncpg.dialect())
    assert cases_module._of_identity(2, 1, True, True)._for(postgresql.asyncpg.dialect()).sql


async def test_empty_values_are_bound_as_their_types_bind_them(backend: DatabaseBackend) -> None:
    """None is converted once per type when built, not per run: a JSON column's None is sent as
    JSON's null, a time's as NULL, exactly as SQLAlchemy's own run sends them."""
    statement = select(
        bindparam("j", type_=JSON),
        bindparam("t", type_=UTCDateTime()),
        bindparam("n", type_=Integer),
    )
    prebuilt = Prebuilt(statement)
    sent: list[Any] = []

    def record(_conn: object, _cursor: object, _sql: str, args: Any, *_: object) -> None:
        sent.append(tuple(args))

    for params in ({"j": None, "t": None, "n": None}, {"j": {"a": 1}, "t": utcnow(), "n": 2}):
        engine = backend.runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            async with backend.runtime.units() as uow:
                connection = await uow.cases._connection()
                theirs = [tuple(r) for r in await connection.execute(statement, params)]
                ours = await prebuilt.rows(connection, params)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert sent[-1] == sent[-2] and ours == theirs


async def test_on_sqlite_a_statement_runs_on_the_loop_or_on_the_thread_as_its_session_says(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """The one call a prebuilt statement makes of the SQLite connection keeps
    `storage.sqlite_loop`'s rule: on the loop in a turn's session, on aiosqlite's thread in
    `off_the_loop()` work — the same rows either way."""
    async with open_backend(request, "sqlite", tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        await applied(opened.store, said(), filing("webchat:c1:a"))
        threads: list[str] = []
        run = prebuilt_module.execute

        def spy(aio: Any, sql: str, args: tuple[Any, ...]) -> tuple[list[Any], int]:
            threads.append(threading.current_thread().name)
            return run(aio, sql, args)

        seen = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(prebuilt_module, "execute", spy)
            patch.setattr(spy, "__name__", "execute")
            async with opened.runtime.units() as uow:
                seen.append(await uow.cases.of_identity("webchat", "c1"))
            with off_the_loop():
                async with opened.runtime.units() as uow:
                    seen.append(await uow.cases.of_identity("webchat", "c1"))
        assert seen[0] == seen[1] and len(seen[0]) == 1
        main = threading.current_thread().name
        assert threads[0] == main and threads[1] != main


@pytest.mark.parametrize("where", ["_start_transaction", "_prepare"])
async def test_a_connection_out_of_step_is_dropped_and_the_work_runs_again(
    request: pytest.FixtureRequest, tmp_path: object, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg out of step with the server ("another operation is in progress": a connection
    dropped while pooled, whose goodbye asyncpg read before its closed socket) at the BEGIN or
    at the statement: the connection is invalidated and the unit of work says Conflict, so the
    turn runs again on a fresh connection — not an InternalError for the citizen."""
    async with open_backend(request, "postgres", tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        runtime = opened.runtime
        await applied(opened.store, said(), filing("webchat:c1:a"))
        broken: list[object] = []
        with pytest.raises(Conflict):
            async with runtime.units() as uow:
                connection = await uow.cases._connection()
                adapted = (await connection.get_raw_connection()).dbapi_connection
                kind = type(adapted)
                original = getattr(kind, where)
                broken.append(adapted)

                async def out_of_step(self: Any, *args: Any) -> Any:
                    if self not in broken:
                        return await original(self, *args)
                    error = asyncpg.exceptions.InternalClientError(
                        "cannot switch to state 15; another operation (2) is in progress"
                    )
                    if where == "_start_transaction":
                        self._handle_exception(error)  # as the adapter's own BEGIN raises
                    raise error

                monkeypatch.setattr(kind, where, out_of_step)
                await uow.cases.of_identity("webchat", "c1")
        async with runtime.units() as uow:  # on another connection: that one was dropped
            assert len(await uow.cases.of_identity("webchat", "c1")) == 1
            fresh = await (await uow.cases._connection()).get_raw_connection()
            assert fresh.dbapi_connection not in broken
