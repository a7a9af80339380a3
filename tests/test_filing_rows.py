"""What a filing writes, row by row, on SQLite and PostgreSQL (storage.filing.Filings: one
statement on PostgreSQL, one a row on SQLite): the same rows either way."""

from __future__ import annotations

import asyncio

from storage.models import Case, CaseEvent, Citizen, Identity, OutboxEntry
from storage.timeline import verify_chain

from .store_backends import (
    DatabaseBackend,
    count,
    database_backend,  # noqa: F401 (the `backend` fixture)
)
from .test_store_contract import applied, filing, said

PHONE = "+8613800138000"


async def test_a_filing_writes_its_case_event_and_outbox_entry_once(
    backend: DatabaseBackend,
) -> None:
    store = backend.store
    first = await applied(store, said(), filing(name="张三", phone=PHONE))
    # The same form again, and again at the same moment: the same case, nothing new written.
    again = await asyncio.gather(
        *(applied(store, said(), filing(name="张三", phone=PHONE)) for _ in range(2))
    )
    assert {r.case_code for r in again} == {first.case_code}
    assert [await count(backend, m) for m in (Case, CaseEvent, OutboxEntry, Citizen)] == [1] * 4
    async with backend.runtime.units() as uow:
        case = await uow.cases.by_code(first.case_code or "")
        assert case is not None
        assert uow.cases.contact(case) == ("张三", PHONE)
        assert (await uow.events.verify(case)).ok
        events = await uow.events.events(case)
        assert verify_chain(case.code, events).ok and [e.type for e in events] == ["submitted"]
        identity = await uow.people.find_identity("webchat", "c1")
        assert identity is not None
        assert (case.identity_id, case.citizen_id) == (identity.id, identity.citizen_id)
        [entry] = await uow.outbox.claim_unpublished(10, skip_locked=False)
        assert entry.case_code == case.code
        assert uow.outbox.data(entry)["contact"] == {"name": "张三", "phone": PHONE}


async def test_the_citizen_is_found_by_phone_the_latest_name_wins_and_the_proof_stays(
    backend: DatabaseBackend,
) -> None:
    store = backend.store
    await applied(store, said(), filing(origin="webchat:c1:a", name="张三", phone=PHONE))
    async with backend.runtime.units() as uow:  # the chat proves the phone (storage/proof.py)
        identity = await uow.people.find_identity("webchat", "c1")
        assert identity is not None
        identity.citizen_proven_at = identity.created_at
        await uow.commit()
    await applied(store, said(), filing(origin="webchat:c1:b", name="张小三", phone=PHONE))
    await applied(store, said(), filing(origin="webchat:c1:c", phone=PHONE))  # no name given
    async with backend.runtime.units() as uow:
        citizen = await uow.people.find_citizen(PHONE)
        identity = await uow.people.find_identity("webchat", "c1")
        assert citizen is not None and identity is not None
        assert uow.cipher.decrypt(citizen.name_enc or b"", "name") == "张小三"
        # The same number typed again keeps the proof; another number moves the link, unproven.
        assert identity.citizen_id == citizen.id and identity.citizen_proven_at is not None
    await applied(store, said(), filing(origin="webchat:c1:d", name="张三", phone="+8613700001111"))
    async with backend.runtime.units() as uow:
        identity = await uow.people.find_identity("webchat", "c1")
        other = await uow.people.find_citizen("+8613700001111")
        assert identity is not None and other is not None
        assert identity.citizen_id == other.id and identity.citizen_proven_at is None
    assert await count(backend, Citizen) == 2
    assert await count(backend, Identity) == 1
    assert await count(backend, Case) == 4
