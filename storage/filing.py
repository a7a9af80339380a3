"""Filing a case, whoever files it: the conversation's submit, the intake API and Open311 all
end in `file_case`, so a case is the same however it arrived."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, cast, func, insert, null, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.kinds import kind_of
from conversation.commands import SubmitCase
from conversation.ports import Conflict

from .cases import attachment_rows
from .documents import case_document
from .models import Case, CaseEvent, Citizen, Identity, OutboxEntry, utcnow
from .prebuilt import Prebuilt
from .proof import query_code_hash
from .uow import UnitOfWork

# Ways in where a system files for a citizen (a grid worker's app, a kiosk, a city platform):
# the case's identity is the filing system (`api` / `grid:07`), never a chat of the citizen.
INTAKE_CHANNELS = frozenset({"api", "open311"})


@dataclass(frozen=True)
class Filer:
    """Who files: the identity the case hangs on (its channel and id there), and the timeline's
    actor. `link`: the identity is the citizen's own chat, so a mobile typed into the form links
    it to that citizen (a filing system's identity is never linked)."""

    channel: str
    external_id: str
    actor: str
    department: str = ""  # where the filer routes it, over the office's suggestion
    language: str = "zh"
    link: bool = False


async def file_case(
    uow: UnitOfWork,
    deadlines: LegalDeadlines,
    command: SubmitCase,
    filer: Filer,
    *,
    query_code: str = "",
) -> Case | None:
    """A new case under a fresh code, its `submitted` step, `case.submitted` for the back
    office and staff paged for risk words, in the caller's unit of work (which commits).

    None when a case of this origin (the form's id) is on file already: a form is never filed
    twice. Written by `Filings.write` in as few statements as the database allows (one on
    PostgreSQL); `query_code`, an anonymous filing's 查询码, is kept only as a keyed hash.

    The `Case` returned is built from the row as written, outside the session (so it costs no
    ORM bookkeeping); `file_for_citizen` puts it in the session for callers that go on with it.
    """
    if command.anonymous and (command.name or command.phone):
        raise ValueError("an anonymous filing carries no name or mobile")
    now = utcnow()
    timed = kind_of(command.kind).timed
    citizen = uow.people.citizen_row(command.phone, command.name) if command.phone else None
    code = uow.cases.new_code(now.astimezone(deadlines.tz).date())
    values = dict(_CASE_DEFAULTS)
    values.update(
        code=code,
        origin=command.origin,
        kind=command.kind,
        category=command.category,
        description=command.description,
        location_text=command.location_text,
        lat=command.lat,
        lng=command.lng,
        channel=filer.channel,
        source=command.source,
        language=command.language,
        answers=command.answers,
        risk_words=list(command.risk_words),
        status="submitted",
        department=filer.department or command.department,
        mailbox=command.mailbox,
        anonymous=command.anonymous,
        created_at=now,
        updated_at=now,
        # A suggestion has no decision on acceptance to make within 15 days.
        accept_due_at=command.acceptance_due if timed else None,
        stages=deadlines.stages_from("submitted", now) if timed else [],
        # The case's contact is the citizen's name and mobile, sealed once for both rows.
        contact_name_enc=_sealed(uow, citizen, "name_enc", command.name, "name"),
        contact_phone_enc=_sealed(uow, citizen, "phone_enc", command.phone, "phone"),
        query_code_hash=query_code_hash(uow, code, query_code) if query_code else None,
    )
    case = _unsaved(values)
    attachments = attachment_rows(filer.channel, command.attachments)
    first = uow.events.first_event(
        case,
        "submitted",
        filer.actor,
        {"kind": case.kind, "category": case.category, "attachments": len(attachments)},
        now,
    )
    # Repeat detection (重复信访) hooks in here, the one place every filing passes, before the
    # back office hears of the case.
    document = case_document(case, (command.name, command.phone), attachments, None, uow.tz)
    contact = document.pop("contact")
    # An anonymous case sends the back office no contact, not even an empty one.
    private = None if case.anonymous else {"contact": contact}
    entry = uow.outbox.entry("case.submitted", case.code, document, private=private)
    identity = {
        "channel": filer.channel,
        "external_id": filer.external_id,
        "language": filer.language,
    }
    filed = await Filings(uow).write(values, identity, citizen, first, entry, link=filer.link)
    if filed is None:
        return None
    case.__dict__.update(zip(("id", "identity_id", "citizen_id"), filed, strict=True))
    for attachment in attachments:
        attachment.case_id = case.id
    if attachments:
        await uow.cases.add_attachments(attachments)
    if command.risk_words:
        await uow.notifications.add(
            f"staff:risk:{case.code}",
            "staff",
            "risk",
            case,
            {"risk_words": list(command.risk_words)},
        )
    return case


def _sealed(
    uow: UnitOfWork, citizen: dict[str, Any] | None, column: str, value: str, field: str
) -> bytes | None:
    """`value` sealed as `field`: the citizen row's own ciphertext when it has one."""
    if not value:
        return None
    sealed: bytes | None = citizen[column] if citizen is not None else None
    return sealed if sealed is not None else uow.cipher.encrypt(value, field)


def _unsaved(values: dict[str, Any]) -> Case:
    """A `Case` holding `values` as if loaded (no change events, no session): what the
    document and the first event read, at a fraction of the cost of setting ~57 attributes."""
    case = _new_case()()
    case.__dict__.update(values)
    return case


@cache
def _new_case() -> Callable[[], Case]:
    configure_mappers()  # as constructing a `Case` does first
    return manager_of_class(Case).new_instance


async def file_for_citizen(
    uow: UnitOfWork, deadlines: LegalDeadlines, command: SubmitCase, channel: str, department: str
) -> Case:
    """A case another system files for a citizen (`channel` in INTAKE_CHANNELS): hung on the
    filing system's identity (`command.source`), and with a mobile given, the receipt a chat
    gives on submit — the code and the next legal step — queued for the notifier to text."""
    filer = Filer(
        channel, command.source, f"{channel}:{command.source}", department, command.language
    )
    case = await file_case(uow, deadlines, command, filer)
    if case is None:
        # Its origin is on file already (callers look first; a race lost to another filing).
        raise Conflict(f"a case of origin {command.origin} is on file already")
    # The caller goes on with it (its document, its timeline): the session's from now on.
    make_transient_to_detached(case)
    uow.session.add(case)
    if command.phone:
        data = {"accept_by": uow.iso(case.accept_due_at)} if case.accept_due_at else {}
        await uow.notifications.add(
            f"citizen:{case.code}:receipt", "citizen", "receipt", case, data
        )
    return case


# -- writing a filing --------------------------------------------------------------------------

_CASE_COLUMNS = [c for c in Case.__table__.columns if not c.primary_key]
_EVENT_COLUMNS = [c for c in CaseEvent.__table__.columns if c.key not in ("id", "case_id")]
_OUTBOX_COLUMNS = [c for c in OutboxEntry.__table__.columns if c.key != "seq"]
_CITIZEN_KEYS = ("phone_hash", "phone_enc", "name_enc", "created_at")
_IDENTITY_KEYS = ("channel", "external_id", "language", "created_at")


def _bind(prefix: str, column: Any) -> Any:
    return bindparam(f"{prefix}{column.key}", type_=column.type)


class Filings:
    """A filing's rows — the citizen (found by phone hash or new; the latest name wins), the
    identity (found or new; linked to the citizen when `link`), the case, its first timeline
    event and its outbox entry — written together. On PostgreSQL one statement (data-modifying
    CTEs) does it all; on SQLite, which has no such CTEs, one statement a row without a round
    trip to pay for. Nothing is read first: the case is inserted only if its origin is not on
    file (ON CONFLICT DO NOTHING), and the event and the outbox entry only with it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def write(
        self,
        case: dict[str, Any],
        identity: dict[str, Any],
        citizen: dict[str, Any] | None,
        event: dict[str, Any],
        entry: dict[str, Any],
        *,
        link: bool,
    ) -> tuple[int, int, int | None] | None:
        """The case's id, its identity's and its citizen's when filed; None when a case of its
        origin is on file already, and nothing was written but the citizen and the identity
        (the same ones that filing wrote). `case` has a value for every column but the id."""
        params = {f"cs_{k}": v for k, v in case.items()}
        params.update({f"ev_{k}": v for k, v in event.items()})
        params.update({f"ob_{k}": v for k, v in entry.items()})
        params.update({f"id_{k}": v for k, v in identity.items()})
        params["id_created_at"] = case["created_at"]
        if citizen is not None:
            params.update({f"ct_{k}": v for k, v in citizen.items()})
        shape = (citizen is not None, link and citizen is not None)
        # On the session's connection, prebuilt (`Prebuilt`): the ORM's handling of a statement,
        # and even Core's, costs more than the statement, and nothing here needs an object.
        connection = await self.uow.cases._connection()
        if connection.dialect.name == "postgresql":
            rows = await _pg_statement(*shape).rows(connection, params)
            if not rows:
                return None
            case_id, identity_id, citizen_id = rows[0]
            return case_id, identity_id, citizen_id
        return await self._one_by_one(connection, params, *shape)

    async def _one_by_one(
        self, connection: AsyncConnection, params: dict[str, Any], has_citizen: bool, link: bool
    ) -> tuple[int, int, int | None] | None:
        citizen_id = None
        if has_citizen:
            citizen_id = await _scalar(_SQLITE_CITIZEN, connection, params)
        params["id_citizen_id"] = citizen_id if link else None
        identity_id = await _scalar(_SQLITE_IDENTITY[link], connection, params)
        if identity_id is None:
            identity_id = await _scalar(_SQLITE_IDENTITY_ID, connection, params)
        params["cs_identity_id"], params["cs_citizen_id"] = identity_id, citizen_id
        case_id = await _scalar(_SQLITE_CASE, connection, params)
        if case_id is None:
            return None
        params["ev_case_id"] = case_id
        await _SQLITE_EVENT.rows(connection, params)
        await _SQLITE_OUTBOX.rows(connection, params)
        return case_id, identity_id, citizen_id


async def _scalar(statement: Prebuilt, connection: AsyncConnection, params: dict[str, Any]) -> Any:
    rows = await statement.rows(connection, params)
    return rows[0][0] if rows else None


# What a new case's columns hold unless the filing says otherwise: their Python-side defaults,
# or None. Columns whose default is made per row (now, an empty list) are left out: `file_case`
# gives each, and a statement run without one fails rather than writing a wrong row.
_CASE_DEFAULTS = {
    c.key: c.default.arg if c.default is not None else None
    for c in _CASE_COLUMNS
    if c.default is None or not c.default.is_callable
}
_IDENTITY_ID = select(Identity.id).where(
    Identity.channel == bindparam("id_channel"),
    Identity.external_id == bindparam("id_external_id"),
)


def _insert_for(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


def _citizen_insert(dialect: str) -> Any:
    """Found by phone hash or new, the latest name winning (none given keeps the one on file).
    Always an upsert, so that RETURNING gives the row even when another transaction made it
    a moment ago (a plain look would not see it in this statement's snapshot)."""
    table = Citizen.__table__
    insert = _insert_for(dialect)(Citizen).values(
        {k: _bind("ct_", table.c[k]) for k in _CITIZEN_KEYS}
    )
    insert = insert.on_conflict_do_update(
        index_elements=["phone_hash"],
        set_={"name_enc": func.coalesce(insert.excluded.name_enc, Citizen.name_enc)},
    )
    return insert.returning(Citizen.id)


def _identity_insert(dialect: str, link: bool, citizen_id: Any = None) -> Any:
    """A found identity is linked to the citizen only when it is not already: a number typed
    into a form proves nothing, so whatever proof the chat gave for another number is dropped."""
    table = Identity.__table__
    values = {k: _bind("id_", table.c[k]) for k in _IDENTITY_KEYS}
    values["citizen_id"] = (
        citizen_id if citizen_id is not None else bindparam("id_citizen_id", type_=Integer)
    )
    insert = _insert_for(dialect)(Identity).values(values)
    if link:
        insert = insert.on_conflict_do_update(
            index_elements=["channel", "external_id"],
            set_={"citizen_id": insert.excluded.citizen_id, "citizen_proven_at": None},
            where=Identity.citizen_id.is_distinct_from(insert.excluded.citizen_id),
        )
    else:
        insert = insert.on_conflict_do_nothing(index_elements=["channel", "external_id"])
    return insert.returning(Identity.id)


def _case_insert(dialect: str, identity_id: Any = None, citizen_id: Any = None) -> Any:
    values = {c.key: _bind("cs_", c) for c in _CASE_COLUMNS}
    if identity_id is not None:
        values["identity_id"], values["citizen_id"] = identity_id, citizen_id
    return (
        _insert_for(dialect)(Case)
        .values(values)
        .on_conflict_do_nothing(index_elements=["origin"])
        .returning(Case.id, Case.identity_id, Case.citizen_id)
    )


_SQLITE_CITIZEN = Prebuilt(_citizen_insert("sqlite"))
_SQLITE_IDENTITY = {link: Prebuilt(_identity_insert("sqlite", link)) for link in (False, True)}
_SQLITE_IDENTITY_ID = Prebuilt(_IDENTITY_ID)
_SQLITE_CASE = Prebuilt(_case_insert("sqlite"))
_SQLITE_EVENT = Prebuilt(
    insert(CaseEvent).values(
        {"case_id": bindparam("ev_case_id", type_=Integer)}
        | {c.key: _bind("ev_", c) for c in _EVENT_COLUMNS}
    )
)
_SQLITE_OUTBOX = Prebuilt(
    insert(OutboxEntry).values({c.key: _bind("ob_", c) for c in _OUTBOX_COLUMNS})
)


@cache
def _pg_statement(has_citizen: bool, link: bool) -> Prebuilt:
    """The whole filing in one PostgreSQL statement (built once per shape)::

        WITH citizen AS (INSERT … ON CONFLICT (phone_hash) DO UPDATE … RETURNING id),
             identity_new AS (INSERT … ON CONFLICT (channel, external_id) … RETURNING id),
             identity AS (SELECT id FROM identity_new UNION ALL SELECT id FROM identities …
                          LIMIT 1),
             filed AS (INSERT INTO cases … ON CONFLICT (origin) DO NOTHING RETURNING …),
             event AS (INSERT INTO case_events SELECT filed.id, … FROM filed),
             entry AS (INSERT INTO outbox SELECT … FROM filed)
        SELECT * FROM filed

    The snapshot a statement reads is taken at its start, so a row found by the plain SELECT
    is one that was there before; the INSERT's RETURNING gives the one it made. An identity
    another transaction made a moment ago is in neither: the case's NOT NULL identity refuses
    it, and the turn (or API call) runs again as for a repeated code; a chat's own identity
    cannot race (the conversation's lock), an API source's only on its first filings.
    """
    citizen_id: Any = null()
    if has_citizen:
        citizen_id = select(_citizen_insert("postgresql").cte("citizen").c.id).scalar_subquery()
    new_identity = _identity_insert(
        "postgresql", link, citizen_id if link else cast(null(), Integer)
    ).cte("identity_new")
    identity = union_all(select(new_identity.c.id), _IDENTITY_ID).limit(1).cte("identity")
    filed = _case_insert("postgresql", select(identity.c.id).scalar_subquery(), citizen_id).cte(
        "filed"
    )
    event = (
        insert(CaseEvent)
        .from_select(
            ["case_id", *(c.key for c in _EVENT_COLUMNS)],
            select(filed.c.id, *(_bind("ev_", c) for c in _EVENT_COLUMNS)),
        )
        .cte("event")
    )
    entry = (
        insert(OutboxEntry)
        .from_select(
            [c.key for c in _OUTBOX_COLUMNS],
            select(*(_bind("ob_", c) for c in _OUTBOX_COLUMNS)).select_from(filed),
        )
        .cte("entry")
    )
    return Prebuilt(
        select(filed.c.id, filed.c.identity_id, filed.c.citizen_id).add_cte(event, entry)
    )
