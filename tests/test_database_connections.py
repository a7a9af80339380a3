"""Connections to PostgreSQL without a ping per checkout, and reads without a transaction.

The pool no longer pings a connection before handing it out (three round trips before every
transaction); a unit of work whose connection turns out dead before it commits runs again.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.ports import Conflict
from storage.db import POOL_OVERFLOW, POOL_SIZE, Database

from .conftest import PG_ADMIN_URL, Citizen


async def _cut_every_connection(url: str) -> int:
    """What a database restart does to a pool: every connection to `url`'s database closed."""
    database = url.rsplit("/", 1)[1]
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            cut = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            return len(cut.all())
    finally:
        await admin.dispose()


async def test_a_turn_on_a_dead_connection_runs_again(shared_settings: Settings) -> None:
    """After the database dropped the pooled connections, the citizen still gets the right
    answer at once: the turn is retried on a fresh connection, not answered with an apology."""
    async with open_minyi(shared_settings) as runtime:
        citizen = Citizen(runtime)
        filed = await citizen.file_a_matter()
        assert "提交成功" in filed
        assert await _cut_every_connection(shared_settings.database_url) >= 1
        # PostgreSQL alone: the form step reads and writes the database; with Redis, the list of
        # cases is the turn's only database work.
        assert "您反映的事项" in await citizen.say("进度查询")
        assert "提交成功" in await Citizen(runtime, sender="citizen-2").file_a_matter()


async def test_a_connection_lost_before_commit_is_a_conflict(shared_settings: Settings) -> None:
    async with open_minyi(shared_settings) as runtime:
        async with runtime.units() as uow:
            await uow.session.execute(text("SELECT 1"))
            await uow.commit()  # the pool now holds a connection
        await _cut_every_connection(shared_settings.database_url)
        with pytest.raises(Conflict):
            async with runtime.units() as uow:
                await uow.session.execute(text("SELECT 1"))
        async with runtime.units() as uow:  # the next one gets a live connection
            assert (await uow.session.execute(text("SELECT 1"))).scalar_one() == 1


async def test_reading_opens_no_transaction(shared_settings: Settings) -> None:
    """Each query through `reading` is a transaction of its own (no BEGIN before it): the
    transaction id the first query took is gone by the second."""
    take = text("SELECT txid_current()")
    held = text("SELECT txid_current_if_assigned()")
    async with open_minyi(shared_settings) as runtime:
        async with runtime.db.reading() as session:
            await session.execute(take)
            assert (await session.execute(held)).scalar_one() is None
        async with runtime.units() as uow:
            taken = (await uow.session.execute(take)).scalar_one()
            assert (await uow.session.execute(held)).scalar_one() == taken


async def test_a_burst_of_turns_reuses_the_pools_connections(clean_postgres: str) -> None:
    """As many units of work at once as the pool may open connections: the second burst finds
    the first one's connections still open instead of opening (and then closing) new ones — a
    connection costs milliseconds of CPU and a forked backend."""
    most = POOL_SIZE + POOL_OVERFLOW
    db = Database(clean_postgres)
    opened: list[object] = []
    event.listen(db.engine.sync_engine, "connect", lambda *_: opened.append(1))
    release, all_in = asyncio.Event(), asyncio.Event()

    async def one_turn() -> None:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
            if db.engine.pool.checkedout() == most:
                all_in.set()
            await release.wait()  # held until the whole burst holds a connection

    try:
        for burst in range(2):
            release.clear()
            all_in.clear()
            turns = [asyncio.create_task(one_turn()) for _ in range(most)]
            await all_in.wait()
            release.set()
            await asyncio.gather(*turns)
            assert len(opened) == POOL_SIZE, (
                f"burst {burst + 1} opened {len(opened) - POOL_SIZE} more"
            )
    finally:
        await db.engine.dispose()
