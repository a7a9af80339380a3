"""The asker-scoped case reads (storage/cases.py `CaseReads`): rows read by Core statements,
which see what their unit of work holds but has not written yet, as the ORM's queries did; and
the submit turn's repeat question asked on the connection the filing then writes on."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from conversation.cases.repeats import RepeatRules
from conversation.similarity import similarity
from storage.models import utcnow

from .store_backends import (
    DatabaseBackend,
    database_backend,  # noqa: F401 (the `backend` fixture)
    open_backend,
)
from .test_store_contract import applied, filing, said

PHONE = "+8613800138000"


async def test_a_proof_not_yet_written_opens_the_citizens_cases_to_the_same_unit_of_work(
    backend: DatabaseBackend,
) -> None:
    store = backend.store
    theirs = (await applied(store, said("c1"), filing("webchat:c1:a", phone=PHONE))).case_code
    mine = (await applied(store, said("c2"), filing("webchat:c2:a", phone=PHONE))).case_code
    assert theirs and mine
    async with backend.runtime.units() as uow:
        # The same mobile typed into both forms proves nothing: c2 sees only its own.
        assert [c.code for c in await uow.cases.of_identity("webchat", "c2")] == [mine]
        assert await uow.cases.owned("webchat", "c2", theirs) is None
        identity = await uow.people.find_identity("webchat", "c2")
        assert identity is not None
        identity.citizen_proven_at = utcnow()  # as storage/proof.py does; not flushed yet
        assert {c.code for c in await uow.cases.of_identity("webchat", "c2")} == {mine, theirs}
        owned = await uow.cases.owned("webchat", "c2", theirs)
        assert owned is not None and owned.description == "小区门口的路灯坏了一个多月"
        assert [e.type for e in await uow.cases.history(owned.id)] == ["submitted"]
    async with backend.runtime.units() as uow:  # rolled back: the proof was never given
        assert await uow.cases.owned("webchat", "c2", theirs) is None


@pytest.mark.parametrize("name", ["postgres", "postgres+redis"])
async def test_the_repeat_question_and_the_filing_take_one_connection(
    request: pytest.FixtureRequest, tmp_path: object, name: str
) -> None:
    async with open_backend(request, name, tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        store, pool = opened.store, opened.runtime.db.engine.sync_engine.pool
        checkouts: list[object] = []

        def checkout(*args: object) -> None:
            checkouts.append(args)

        event.listen(pool, "checkout", checkout)
        try:
            async with store.turn() as turn:  # `1 提交`: asked, then filed
                similar = await turn.lookups.similar_open_case(
                    "webchat", "c1", "petition", "city", "路灯坏了", RepeatRules(), similarity
                )
                assert similar is None
                results = await turn.apply([filing()], said())
                await turn.commit()
        finally:
            event.remove(pool, "checkout", checkout)
        assert results.case_code and len(checkouts) == 1


async def test_the_askers_cases_are_read_by_id_not_by_scanning_the_offices(
    request: pytest.FixtureRequest, tmp_path: object
) -> None:
    """进度查询's statement reaches the asker's cases through their identity's index: a plan
    that scans cases (newest first, testing each against the asker) costs every chat the size
    of the office. SQLite's plan, which needs no statistics, says which it is."""
    async with open_backend(request, "sqlite", tmp_path) as opened:
        assert isinstance(opened, DatabaseBackend)
        await applied(opened.store, said(), filing())
        engine = opened.runtime.db.engine.sync_engine
        asked: list[tuple[str, object]] = []

        def before(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
            asked.append((sql, params))

        event.listen(engine, "before_cursor_execute", before)
        try:
            async with opened.runtime.units() as uow:
                assert len(await uow.cases.of_identity("webchat", "c1")) == 1
        finally:
            event.remove(engine, "before_cursor_execute", before)
        [(sql, params)] = [(s, p) for s, p in asked if s.lstrip().startswith("SELECT")]
        async with opened.runtime.db.engine.connect() as conn:
            plan = [
                row[-1] for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            ]
        assert not [step for step in plan if step.startswith("SCAN cases")], plan
        assert any("ix_cases_identity_id" in step for step in plan), plan
