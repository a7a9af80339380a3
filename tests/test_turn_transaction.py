"""The database store's turn: its statements on a Core connection in the turn's own transaction,
the ORM session (`UnitOfWork`) opened only for a turn that applies commands, joined to it.

storage/conversations.py `StoreTurn`, storage/db.py `Database.transaction`, storage/uow.py
`UnitOfWork(connection=)`. Run on SQLite and on PostgreSQL without Redis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.messages import Reply
from conversation.ports import Conflict
from conversation.state import ConversationState
from storage.conversations import DatabaseConversationStore, StoreTurn, purge_expired
from storage.models import Case, Conversation, InboundDedupe, OutboxEntry

from .conftest import Citizen


@contextmanager
def sessions_begun() -> Iterator[list[int]]:
    """Counts ORM sessions that began a transaction on a connection, within the block."""
    begun: list[int] = []

    def count(*_: object) -> None:
        begun.append(1)

    event.listen(Session, "after_begin", count)
    try:
        yield begun
    finally:
        event.remove(Session, "after_begin", count)


def told_after_commits(runtime: Minyi) -> list[frozenset[str]]:
    """What the store tells the workers after its commits, from now on."""
    store = runtime.store
    told: list[frozenset[str]] = []
    wake = store.committed

    def committed(touched: frozenset[str]) -> None:
        told.append(touched)
        wake(touched)

    store.committed = committed
    return told


async def _to_the_summary(citizen: Citizen) -> None:
    for text in ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "XX区幸福路12号", "跳过"):
        await citizen.say(text)
    await citizen.say("张三")
    await citizen.say("13800138000")


async def _count(runtime: Minyi, model: Any, *where: Any) -> int:
    async with runtime.db.session() as session:
        query = select(func.count()).select_from(model)
        return int(await session.scalar(query.where(*where) if where else query) or 0)


async def test_a_form_step_and_a_progress_query_open_no_orm_session(
    database_settings: Settings,
) -> None:
    """A step that applies no command runs on the turn's connection alone; a lookup (进度查询)
    reads on that connection too, in the turn's transaction."""
    async with open_minyi(database_settings) as runtime:
        citizen = Citizen(runtime, sender="no-session")
        await citizen.say("1")
        with sessions_begun() as begun:
            asked = await citizen.say("4")
            assert not begun, "a form step opened an ORM session"
        assert asked
        await citizen.say("菜单")
        with sessions_begun() as begun:
            progress = await citizen.say("进度查询")
            assert not begun, "a progress query opened an ORM session"
        assert progress


async def test_a_submit_commits_state_case_and_outbox_together(
    database_settings: Settings,
) -> None:
    """The submit's unit of work joins the turn's transaction: one commit for all, and the
    relay is told of the outbox only after it."""
    async with open_minyi(database_settings) as runtime:
        assert isinstance(runtime.store, DatabaseConversationStore)
        told = told_after_commits(runtime)
        citizen = Citizen(runtime, sender="together")
        await _to_the_summary(citizen)
        assert not told, "a form step told the workers of queues it did not write"
        with sessions_begun() as begun:
            filed = await citizen.say("1", message_id="submit-1")
        # Its rows are written prebuilt on the turn's connection: the unit of work makes no
        # ORM session for a submit that adds no ORM object (docs/wechat.md, "The submit
        # without a session").
        assert not begun, "a submit that writes no ORM object opened an ORM session"
        assert any("outbox" in touched for touched in told)
        assert await _count(runtime, Case) == 1
        assert await _count(runtime, OutboxEntry) >= 1
        # The re-delivered submit gets the same answer and files nothing more.
        assert await citizen.say("1", message_id="submit-1") == filed
        assert await _count(runtime, Case) == 1


async def test_a_failure_after_the_filing_rolls_back_case_and_state(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn that fails after its unit of work flushed the case (here: remembering the
    replies) leaves nothing: no case, no outbox entry, no dedupe record, the state as it was.
    The same message delivered again then files exactly one case."""
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        citizen = Citizen(runtime, sender="rolled-back")
        await _to_the_summary(citizen)
        async with runtime.db.session() as session:
            before = await session.scalar(select(Conversation.version))
        outbox_before = await _count(runtime, OutboxEntry)

        async def broken(turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
            assert turn._uow is not None  # the filing was written in the turn's transaction
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(store, "_remember", broken)
        with pytest.raises(RuntimeError):
            await citizen.say("1", message_id="submit-2")
        monkeypatch.undo()
        assert await _count(runtime, Case) == 0
        assert await _count(runtime, OutboxEntry) == outbox_before
        async with runtime.db.session() as session:
            assert await session.scalar(select(Conversation.version)) == before
            assert await session.get(InboundDedupe, "webchat:rolled-back:submit-2") is None
        await citizen.say("1", message_id="submit-2")
        assert await _count(runtime, Case) == 1


async def test_a_turn_rolled_back_writes_nothing(database_settings: Settings) -> None:
    """State and dedupe written on the turn's connection and not committed are gone."""
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        async with store.turn() as turn:
            assert await turn.load_state("webchat:never") is None
            await turn.save_state("webchat:never", ConversationState(flow="x"))
            await turn.remember("webchat:never:m1", [Reply("hello")])
            # no commit
        async with store.turn() as turn:
            assert await turn.load_state("webchat:never") is None
            assert await turn.recall("webchat:never:m1") is None


async def test_a_connection_lost_before_commit_is_a_conflict_and_during_it_is_not(
    database_settings: Settings,
) -> None:
    """The engine runs a turn again on Conflict: right when the connection died before COMMIT
    (nothing was committed), wrong during it (the commit may have happened)."""
    lost = DBAPIError("SELECT 1", None, Exception("server closed the connection"))
    lost.connection_invalidated = True
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        turn = store.turn()
        await turn.load_state("webchat:lost")
        with pytest.raises(Conflict):
            await turn.close(lost)
        turn = store.turn()
        await turn.load_state("webchat:lost")
        turn._committing = True
        await turn.close(lost)  # not turned into Conflict: the caller sees the error itself


async def test_the_transaction_ends_with_the_turn(database_settings: Settings) -> None:
    """A turn gives its connection back when it ends (on SQLite the pool's only one: the next
    turn would otherwise wait for it)."""
    async with open_minyi(database_settings) as runtime:
        store = runtime.store
        assert isinstance(store, DatabaseConversationStore)
        for n in range(3):
            async with store.turn() as turn:
                await turn.load_state("webchat:again")
                await turn.save_state("webchat:again", ConversationState(flow=f"f{n}"))
                await turn.commit()
            assert turn._connection is None and turn._transaction is None
        async with store.turn() as turn:
            state = await turn.load_state("webchat:again")
        assert state is not None and state.flow == "f2" and state.version == 3


async def test_rows_written_on_sqlites_driver_read_back_as_sqlalchemy_wrote_them(
    sqlite_only: Settings,
) -> None:
    """On SQLite the store's statements bypass SQLAlchemy (`_Driven`) but keep its conversions:
    the ORM reads the times back as UTC, and the purge's comparisons find them."""
    async with open_minyi(sqlite_only) as runtime:
        await Citizen(runtime, sender="formats").say("1", message_id="f1")
        async with runtime.db.session() as session:
            conversation = (await session.scalars(select(Conversation))).one()
            seen = await session.get(InboundDedupe, "webchat:formats:f1")
        assert seen is not None
        now = datetime.now(UTC)
        assert conversation.expires_at.tzinfo is not None and seen.expires_at.tzinfo is not None
        assert now < conversation.expires_at <= now + timedelta(days=1, minutes=1)
        assert now + timedelta(hours=23) < seen.expires_at <= now + timedelta(days=1, minutes=1)
        assert await purge_expired(runtime.db) == 0  # nothing expired: nothing purged
