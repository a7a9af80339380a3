"""The submit without an ORM session (docs/wechat.md, "The submit without a session").

In either conversation store a turn that applies commands runs its unit of work joined to the
turn's own Core transaction (`Database.transaction()`), and the unit of work makes its ORM
session only when something uses it. A submit writes its rows prebuilt on the connection and
needs none; what does use one (a notification, an attachment, the look for an already-filed
form) gets it in the same transaction. storage/conversations.py `StoreTurn`, storage/uow.py
`UnitOfWork(connection=)`. Run on every backend (the Redis store on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.ports import Conflict
from storage.cases import Cases
from storage.conversations import RedisConversationStore, StoreTurn
from storage.db import Database
from storage.models import Case, CaseEvent, Notification, OutboxEntry

from .conftest import Citizen, settings_for
from .sql_trace import statements
from .test_turn_transaction import (
    _count,
    _to_the_summary,
    sessions_begun,
    told_after_commits,
)


async def test_a_submit_opens_no_session_and_commits_case_event_and_outbox_together(
    settings: Settings,
) -> None:
    async with open_minyi(settings) as runtime:
        citizen = Citizen(runtime, sender="no-session-submit")
        await _to_the_summary(citizen)
        told = told_after_commits(runtime)
        with sessions_begun() as begun:
            filed = await citizen.say("1", message_id="submit-1")
        assert "提交成功" in filed
        assert not begun, "a submit that writes no ORM object opened an ORM session"
        assert await _count(runtime, Case) == 1
        assert await _count(runtime, CaseEvent, CaseEvent.type == "submitted") == 1
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 1
        # The relay is woken, after the commit.
        assert any("outbox" in touched for touched in told)


async def test_a_failure_before_the_commit_leaves_no_half_filing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn that fails after its filing, before it commits, leaves none of the filing — no
    case, no event, no outbox entry — where the filing is several statements in the turn's
    transaction, and all of it on the Redis store on PostgreSQL, where it is one statement that
    commits on its own (`storage.intake.writes_once`). Either way the same message delivered
    again files exactly one case: there the repeat question names the case filed, and going on
    finds the form by its id."""
    async with open_minyi(settings) as runtime:
        store = runtime.store
        citizen = Citizen(runtime, sender="rolled-back-submit")
        await _to_the_summary(citizen)

        async def broken(turn: StoreTurn, *args: object) -> None:
            assert turn._uow is not None and turn._connection is not None  # filed, not committed
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(store, "_remember", broken)
        with pytest.raises(RuntimeError):
            await citizen.say("1", message_id="submit-2")
        monkeypatch.undo()
        alone = isinstance(store, RedisConversationStore) and runtime.db.is_postgres
        kept = 1 if alone else 0
        assert await _count(runtime, Case) == kept
        assert await _count(runtime, CaseEvent) == kept
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == kept
        again = await citizen.say("1", message_id="submit-2")
        if alone:
            async with runtime.db.session() as session:
                code = await session.scalar(select(Case.code))
            assert code is not None and code in again and "同一件事" in again
            again = await citizen.say("2", message_id="submit-2b")
            assert code in again
        assert "提交成功" in again
        assert await _count(runtime, Case) == 1
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 1


async def test_a_session_used_by_a_command_is_made_in_the_turns_transaction(
    settings: Settings,
) -> None:
    """A command that does use the session (here a staff notification, as a filing with risk
    words queues) gets it on demand, in the turn's transaction: rolled back with the turn,
    committed with it, and the notifier woken only then."""
    async with open_minyi(settings) as runtime:
        store = runtime.store
        told = told_after_commits(runtime)
        async with store.turn() as turn:
            uow = await turn.uow()
            assert not uow.session_opened
            await uow.notifications.add("staff:risk:test-1", "staff", "risk", None, {})
            assert uow.session_opened
            # not committed
        assert await _count(runtime, Notification) == 0
        assert not told
        async with store.turn() as turn:
            uow = await turn.uow()
            await uow.notifications.add("staff:risk:test-2", "staff", "risk", None, {})
            await turn.commit()
        assert await _count(runtime, Notification) == 1
        assert told == [frozenset({"notifications"})]


async def test_a_resubmitted_form_is_not_filed_twice(
    request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Redis store writes the state after the database commit: a state write lost there
    leaves the citizen at the summary, and their "1" again submits the same form. It is found
    by its id (the look runs through a session made then, in the same transaction as the
    filing's attempt), and the answer names the same case. (The repeat question asks first:
    the case filed looks like the matter.)"""
    # Only the Redis store: the database store commits the state with the case.
    async with open_minyi(settings_for(request, "postgres+redis", tmp_path)) as runtime:
        store = runtime.store
        assert isinstance(store, RedisConversationStore)
        citizen = Citizen(runtime, sender="lost-state")
        await _to_the_summary(citizen)
        finish = store._after_commit

        async def lost(turn: StoreTurn) -> None:
            turn._state = turn._seen = None
            raise ConnectionError("Redis went away after the commit")

        monkeypatch.setattr(store, "_after_commit", lost)
        with pytest.raises(ConnectionError):
            await citizen.say("1", message_id="submit-3")
        monkeypatch.setattr(store, "_after_commit", finish)
        assert await _count(runtime, Case) == 1
        async with runtime.db.session() as session:
            code = await session.scalar(select(Case.code))
        # The repeat question finds the case filed (its look reads on the connection) …
        asked = await citizen.say("1", message_id="submit-4")
        assert code is not None and code in asked and "同一件事" in asked
        # … and "a new matter" submits the same form again: found by its id, not filed twice.
        with sessions_begun() as begun:
            again = await citizen.say("2", message_id="submit-5")
        assert begun, "the look for the filed form runs through a session made then"
        assert code in again and "提交成功" in again
        assert await _count(runtime, Case) == 1
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 1


async def test_a_lost_connection_before_commit_is_a_conflict_and_during_it_is_not(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either store: the turn runs again when its connection died before COMMIT (nothing was
    committed), not when it died during it (the commit may have happened)."""
    lost = DBAPIError("SELECT 1", None, Exception("server closed the connection"))
    lost.connection_invalidated = True
    async with open_minyi(settings) as runtime:
        store = runtime.store
        turn = store.turn()
        await turn.uow()
        with pytest.raises(Conflict):
            await turn.close(lost)

        async def commit_lost(self: AsyncConnection) -> None:
            raise lost

        monkeypatch.setattr(AsyncConnection, "commit", commit_lost)
        with pytest.raises(DBAPIError):  # not turned into Conflict: the caller sees it
            async with store.turn() as turn:
                uow = await turn.uow()
                await uow.notifications.add("staff:risk:lost", "staff", "risk", None, {})
                await turn.commit()
        monkeypatch.undo()
        assert turn._connection is None and turn._transaction is None
        assert await _count(runtime, Notification) == 0


async def test_a_turns_transaction_gives_its_connection_back_committed_or_not(
    clean_postgres: str,
) -> None:
    """`Database.transaction()` closes a committed connection directly (nothing to send) and
    one still in its transaction in a task a cancellation cannot abandon: either way the
    connection is back in the pool, and what was not committed is gone."""
    db = Database(clean_postgres)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE kept (n int)"))
            await conn.commit()
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO kept VALUES (1)"))
                raise RuntimeError("the turn failed")
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async def cancelled() -> None:
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO kept VALUES (2)"))
                await asyncio.sleep(10)

        task = asyncio.ensure_future(cancelled())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with db.transaction() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM kept"))).scalar_one() == 0
            await conn.execute(text("DROP TABLE kept"))
            await conn.commit()
    finally:
        await db.dispose()


@contextmanager
def transaction_statements() -> Iterator[list[str]]:
    """BEGIN, COMMIT and ROLLBACK as asyncpg sends them (its `Transaction` runs each through
    `Connection.execute`), while the block runs."""
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def recording(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if query.split(" ", 1)[0].rstrip(";").upper() in ("BEGIN", "COMMIT", "ROLLBACK"):
            sent.append(query.split(" ", 1)[0].rstrip(";").upper())
        return await execute(self, query, *args, **kwargs)

    asyncpg.Connection.execute = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        asyncpg.Connection.execute = execute  # type: ignore[method-assign]


async def _to_the_summary_with_a_photo(citizen: Citizen) -> None:
    for said in ("1", "4", "楼道里的灯坏了两个星期，晚上看不见台阶。", "XX区和平路3号"):
        await citizen.say(said)
    assert "第1张" in await citizen.photo("m1")
    for said in ("完成", "李四", "13900139000"):
        await citizen.say(said)


async def test_a_submit_on_the_redis_store_commits_its_one_statement_alone(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """On `1 提交` the repeat question's look and the filing each commit on their own, with no
    BEGIN and COMMIT around them: the filing is one statement (`writes_once`). A filing with
    photos is more than one (the attachments' rows), and gets its transaction."""
    async with open_minyi(settings_for(request, "postgres+redis", tmp_path)) as runtime:
        citizen = Citizen(runtime, sender="alone-submit")
        await _to_the_summary(citizen)
        async with statements(runtime.db) as said:
            with transaction_statements() as sent:
                assert "提交成功" in await citizen.say("1")
        assert sent == []
        # The look, then the filing: one write. A second write in `file_case` for such a
        # submit would commit apart from the first — `writes_once` must say no to it then.
        assert [s.split(" ", 1)[0] for s in said] == ["SELECT", "WITH"], said
        assert await _count(runtime, Case) == 1
        assert await _count(runtime, CaseEvent, CaseEvent.type == "submitted") == 1
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 1

        other = Citizen(runtime, sender="photo-submit")
        await _to_the_summary_with_a_photo(other)
        with transaction_statements() as sent:
            assert "提交成功" in await other.say("1")
        assert sent == ["BEGIN", "COMMIT"]
        assert await _count(runtime, Case) == 2


async def test_a_filing_with_photos_that_fails_before_its_commit_keeps_nothing(
    request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than one statement (the case, then its photos' rows) on the Redis store on
    PostgreSQL: in one transaction, so a failure after the case's statement keeps none of it."""
    async with open_minyi(settings_for(request, "postgres+redis", tmp_path)) as runtime:
        citizen = Citizen(runtime, sender="photo-rolled-back")
        await _to_the_summary_with_a_photo(citizen)

        async def broken(*args: object) -> None:
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(Cases, "add_attachments", broken)
        with pytest.raises(RuntimeError):
            await citizen.say("1", message_id="photo-submit")
        monkeypatch.undo()
        assert await _count(runtime, Case) == 0
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 0
        assert "提交成功" in await citizen.say("1", message_id="photo-submit")
        assert await _count(runtime, Case) == 1


async def test_reads_first_gives_the_connection_back_in_its_usual_mode(
    clean_postgres: str,
) -> None:
    """`Database.transaction(reads_first=True)`: statements commit one by one until
    `begin_writes`, after which they are one transaction again; and the pooled connection, used
    next by an ordinary transaction, is in a transaction again (what that one does not commit
    is not kept)."""
    db = Database(clean_postgres)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE marks (n int)"))
            await conn.commit()
        with pytest.raises(RuntimeError):
            async with db.transaction(reads_first=True) as conn:
                used = (await conn.get_raw_connection()).dbapi_connection
                await conn.execute(text("INSERT INTO marks VALUES (1)"))  # kept alone
                await db.begin_writes(conn)
                await conn.execute(text("INSERT INTO marks VALUES (2)"))
                raise RuntimeError("the turn failed")
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                assert (await conn.get_raw_connection()).dbapi_connection is used
                await conn.execute(text("INSERT INTO marks VALUES (3)"))
                raise RuntimeError("the turn failed")
        # A read connection (autocommit) goes back in the usual mode too.
        async with db.read_connection() as conn:
            assert (await conn.get_raw_connection()).dbapi_connection is used
            await conn.execute(text("INSERT INTO marks VALUES (4)"))  # kept alone
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                assert (await conn.get_raw_connection()).dbapi_connection is used
                await conn.execute(text("INSERT INTO marks VALUES (5)"))
                raise RuntimeError("the turn failed")
        async with db.transaction() as conn:
            assert (await conn.execute(text("SELECT n FROM marks"))).scalars().all() == [1, 4]
            await conn.execute(text("DROP TABLE marks"))
            await conn.commit()
    finally:
        await db.dispose()


async def test_reads_first_is_refused_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            async with db.transaction(reads_first=True):
                pass
    finally:
        await db.dispose()
