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

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.ports import Conflict
from storage.conversations import RedisConversationStore, StoreTurn
from storage.db import Database
from storage.models import Case, CaseEvent, Notification, OutboxEntry

from .conftest import Citizen, settings_for
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


async def test_a_failure_before_the_commit_rolls_the_whole_filing_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of a filing is kept when its turn fails before committing: no case, no event,
    no outbox entry. The same message delivered again files exactly one case."""
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
        assert await _count(runtime, Case) == 0
        assert await _count(runtime, CaseEvent) == 0
        assert await _count(runtime, OutboxEntry, OutboxEntry.type == "case.submitted") == 0
        assert "提交成功" in await citizen.say("1", message_id="submit-2")
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
