"""Cases: filing with a fresh code, finding by code or owner, listing for the back office."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, Select, Table, and_, bindparam, select, union
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from conversation.codes import new_case_code

from .crypto import PiiCipher
from .models import Attachment, Case, CaseAccess, CaseEvent, Identity, UTCDateTime
from .prebuilt import Prebuilt
from .routing import handled_by


class CaseReads:
    """What a citizen may read of cases, always scoped to the asking channel identity, as rows
    (Core statements built once): on a unit of work's connection (`Cases`), or on one outside
    any transaction (`storage.uow.Reading`)."""

    async def _connection(self) -> AsyncConnection:
        raise NotImplementedError

    async def of_identity(
        self,
        channel: str,
        external_id: str,
        *,
        statuses: tuple[str, ...] = (),
        kinds: tuple[str, ...] = (),
        category: str = "",
        since: datetime | None = None,
        limit: int = 5,
    ) -> list[CaseRow]:
        """The asker's own cases (see `_owned_by`), newest first (`by_code` gives the mapped
        case to a caller that changes it)."""
        query = _of_identity(len(statuses), len(kinds), bool(category), since is not None)
        params: dict[str, Any] = {
            "asker_channel": channel,
            "asker_external_id": external_id,
            "category": category,
            "since": since,
            "limit": limit,
        }
        params.update((f"status{i}", status) for i, status in enumerate(statuses))
        params.update((f"kind{i}", kind) for i, kind in enumerate(kinds))
        rows = await query.rows(await self._connection(), params)
        return [CaseRow._make(row) for row in rows]

    async def owned(self, channel: str, external_id: str, code: str) -> CaseRow | None:
        """The case only if it is this identity's: one query, so unknown and foreign look alike."""
        params = {"asker_channel": channel, "asker_external_id": external_id, "code": code}
        rows = await _OWNED_CODE.rows(await self._connection(), params)
        return CaseRow._make(rows[0]) if rows else None

    async def history(self, case_id: int) -> list[EventRow]:
        """A case's timeline, oldest first (what the citizen's view of it reads)."""
        rows = await _HISTORY.rows(await self._connection(), {"case_id": case_id})
        return [EventRow._make(row) for row in rows]


class Cases(CaseReads):
    """Cases in a unit of work: filing, finding by code or owner, listing for the back office."""

    def __init__(
        self, session: AsyncSession, cipher: PiiCipher, *, connection: AsyncConnection | None = None
    ) -> None:
        self.session = session
        self.cipher = cipher
        # A joined unit of work's connection (a conversation turn's), whose session is made
        # only when something uses it (`storage.uow`): the reads and the filing run on it.
        self.joined = connection
        self._held: tuple[object, AsyncConnection] | None = None

    async def _connection(self) -> AsyncConnection:
        """The session's connection, after writing what the session holds (as the ORM's
        autoflush would before a query: an identity added this turn is seen).

        Joined to a turn's connection, that connection, without making a session (the
        session, once made, is in its transaction: what it holds is flushed first).

        Asked of the session once per transaction (a submit asks twice: the repeat question's
        look, the filing): `AsyncSession.connection()` is a greenlet switch and a walk through
        the session's transaction each time, for the same connection until the transaction
        ends — a new transaction (after a commit or a rollback) asks again."""
        if self.joined is not None:
            made = getattr(self.session, "made", self.session)  # a session on demand's
            if made is not None and (made.new or made.dirty or made.deleted):
                await made.flush()
            return self.joined
        session = self.session
        if session.new or session.dirty or session.deleted:
            await session.flush()
        transaction = session.sync_session.get_transaction()
        held = self._held
        if held is not None and transaction is not None and held[0] is transaction:
            return held[1]
        connection = await session.connection()
        self._held = (session.sync_session.get_transaction(), connection)
        return connection

    async def by_code(self, code: str, *, for_update: bool = False) -> Case | None:
        query = select(Case).where(Case.code == code)
        if for_update:
            # Serialises timeline appends and status changes per case on PostgreSQL (no-op on SQLite,
            # where BEGIN IMMEDIATE already serialises writers).
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def by_origin(self, origin: str) -> Case | None:
        return await self.session.scalar(select(Case).where(Case.origin == origin))

    def new_code(self, day: date) -> str:
        """A fresh case code for a filing on `day`. Not asked beforehand whether it is free
        (32**6 a day): the unique index refuses the one-in-a-billion repeat, and the turn runs
        again."""
        return new_case_code(day)

    async def add(self, case: Case, day: date, attachments: list[Attachment]) -> Case:
        """A case under a fresh code through the ORM, one row at a time (a filing goes through
        `storage.filing.Filings`, in one statement; this is for the rare writer that builds
        its rows itself, such as the desk's test fixtures)."""
        case.code = self.new_code(day)
        self.session.add(case)
        await self.session.flush()  # the id, for the attachments and the timeline
        for attachment in attachments:
            attachment.case_id = case.id
            self.session.add(attachment)
        return case

    async def add_attachments(self, attachments: list[Attachment]) -> None:
        """A filed case's photos and recordings (`case_id` set), written with the next flush."""
        self.session.add_all(attachments)

    def set_contact(self, case: Case, name: str, phone: str) -> None:
        case.contact_name_enc = self.cipher.encrypt(name, "name") if name else None
        case.contact_phone_enc = self.cipher.encrypt(phone, "phone") if phone else None

    def contact(self, case: Case) -> tuple[str, str]:
        name = self.cipher.decrypt(case.contact_name_enc, "name") if case.contact_name_enc else ""
        phone = (
            self.cipher.decrypt(case.contact_phone_enc, "phone") if case.contact_phone_enc else ""
        )
        return name, phone

    async def attachments(self, case: Case) -> list[Attachment]:
        rows = await self.session.scalars(
            select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id)
        )
        return list(rows)

    async def page(
        self,
        *,
        status: str = "",
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 50,
        department: str = "",
    ) -> list[Case]:
        """Back-office listing, newest id last, keyset-paged by case id; with `department`,
        the cases it leads or co-handles."""
        query = select(Case).where(Case.id > after_id).order_by(Case.id).limit(limit)
        if status:
            query = query.where(Case.status == status)
        if department:
            query = query.where(handled_by(department))
        if since is not None:
            query = query.where(Case.updated_at >= since)
        return list(await self.session.scalars(query))


class CaseRow(NamedTuple):
    """What a citizen's view of a case and the repeat question read of it (`CaseFacts`), read
    as a row: the mapped `Case` costs more to load than the query to run."""

    id: int
    code: str
    kind: str
    category: str
    description: str
    status: str
    created_at: datetime
    updated_at: datetime
    accept_due_at: datetime | None
    finish_due_at: datetime | None
    review_due_at: datetime | None
    extended_days: int | None
    stages: list[dict[str, Any]]


class EventRow(NamedTuple):
    """One timeline entry as a citizen's view reads it (`Happening`)."""

    type: str
    at: datetime
    data: dict[str, Any]


_CASES = cast(Table, Case.__table__)
_EVENTS = cast(Table, CaseEvent.__table__)


def _owned_by() -> Select[Any]:
    """The cases that are the asker's own (`asker_channel`, `asker_external_id`): filed from
    this identity, or — once the asker has proved they hold the phone — filed for that citizen
    anywhere (by a grid worker, a kiosk), or one this identity proved with its 查询码 or 验证码
    (storage/proof.py). An asker with no identity row (a first message) has none.

    Their ids are gathered first, each way by its own index, then the cases read by id: the
    cost is the asker's own cases, however many others the office holds. (Asked as one join
    filtered by "this identity's, or its citizen's, or granted", the database could only scan
    cases — by category and date, or all of them newest first — and test each against the
    asker.) Built once, on the tables: a chat asks it on every 进度查询 and submit."""
    identities = cast(Table, Identity.__table__)
    access = cast(Table, CaseAccess.__table__)
    mine = _CASES.alias("mine")
    asker = and_(
        identities.c.channel == bindparam("asker_channel"),
        identities.c.external_id == bindparam("asker_external_id"),
    )
    asker_id = select(identities.c.id).where(asker).scalar_subquery()
    proven_citizen = (
        select(identities.c.citizen_id)
        .where(asker, identities.c.citizen_proven_at.is_not(None))
        .scalar_subquery()
    )
    ids = union(
        select(mine.c.id).where(mine.c.identity_id == asker_id),
        select(mine.c.id).where(mine.c.citizen_id == proven_citizen),
        select(access.c.case_id).where(access.c.identity_id == asker_id),
    )
    return select(*(_CASES.c[name] for name in CaseRow._fields)).where(_CASES.c.id.in_(ids))


_OWNED = _owned_by()
_OWNED_CODE = Prebuilt(_OWNED.where(_CASES.c.code == bindparam("code")))
_HISTORY = Prebuilt(
    select(_EVENTS.c.type, _EVENTS.c.at, _EVENTS.c.data)
    .where(_EVENTS.c.case_id == bindparam("case_id"))
    .order_by(_EVENTS.c.seq)
)


@cache
def _of_identity(statuses: int, kinds: int, category: bool, since: bool) -> Prebuilt:
    """The asker's own cases, newest first, with the filters asked for (built once each). The
    lists are as many plain parameters as they have items, not expanding ones: those are
    rendered into the SQL anew on every run."""
    query = _OWNED.order_by(_CASES.c.created_at.desc(), _CASES.c.id.desc()).limit(
        bindparam("limit", type_=Integer)
    )
    if statuses:
        query = query.where(_CASES.c.status.in_([bindparam(f"status{i}") for i in range(statuses)]))
    if kinds:
        query = query.where(_CASES.c.kind.in_([bindparam(f"kind{i}") for i in range(kinds)]))
    if category:
        query = query.where(_CASES.c.category == bindparam("category"))
    if since:
        query = query.where(_CASES.c.created_at >= bindparam("since", type_=UTCDateTime()))
    return Prebuilt(query)


def attachment_rows(channel: str, media: Any) -> list[Attachment]:
    return [
        Attachment(
            kind=m.kind,
            channel=channel,
            ref=m.ref[:512],
            url=m.url[:1024],
            file_key=m.file or None,
        )
        for m in media
    ]
