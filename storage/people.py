"""Citizens (found by keyed phone hash) and the channel identities they write from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from .crypto import PiiCipher
from .models import Citizen, Identity, utcnow

# The field bound into the encrypted mobile of an SMS conversation (`Identity.phone_enc`).
SMS_ROUTE = "sms-route"


def sms_conversation_id(cipher: PiiCipher, phone_e164: str) -> str:
    """The id of the SMS conversation of a mobile (channel `sms`): a keyed hash, never the
    number; the number itself is kept encrypted beside it (`Identity.phone_enc`)."""
    return cipher.digest(phone_e164, "sms-sender")


async def insert_ignoring_duplicates(
    session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either backend; True when the row was inserted.

    The loser of a race just reads what the winner wrote.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def insert_ignoring_duplicates_many(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """`insert_ignoring_duplicates` for many rows in one statement (on the table: the ORM's
    per-value handling of a bulk insert costs more than the insert).

    The rows go as parameters of one cached statement, which SQLAlchemy sends as one multi-row
    INSERT ("insertmanyvalues", up to 1,000 rows a statement; RETURNING asks for it on every
    driver). `.values(rows)` instead made a new statement each time, compiled anew for every
    batch: a fifth of the SMS rating job's time."""
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = model.__table__
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(*(table.c[k] for k in keys))
    )
    await session.execute(statement, rows)


async def insert_returning(
    session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the new row as an ORM object, in one round
    trip; None when the row was there already (the caller reads it)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(model).values(**values).on_conflict_do_nothing(index_elements=keys).returning(model)
    )
    return await session.scalar(statement)


class People:
    def __init__(self, session: AsyncSession, cipher: PiiCipher) -> None:
        self.session = session
        self.cipher = cipher

    async def identity(self, channel: str, external_id: str, language: str = "zh") -> Identity:
        found = await self.find_identity(channel, external_id)
        if found is not None:
            return found
        found = await insert_returning(
            self.session,
            Identity,
            {"channel": channel, "external_id": external_id, "language": language},
            ["channel", "external_id"],
        )
        # None: another turn inserted it between our look and our insert; read theirs.
        found = found or await self.find_identity(channel, external_id)
        assert found is not None
        return found

    async def find_identity(self, channel: str, external_id: str) -> Identity | None:
        return await self.session.scalar(
            select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
        )

    async def citizen(self, phone: str, name: str = "") -> Citizen:
        """The citizen with this phone (E.164), created on first sight; the latest name wins."""
        phone_hash = self.cipher.phone_hash(phone)
        found = await self.find_citizen(phone)
        if found is None:
            values: dict[str, Any] = {
                "phone_hash": phone_hash,
                "phone_enc": self.cipher.encrypt(phone, "phone"),
            }
            if name:
                values["name_enc"] = self.cipher.encrypt(name, "name")
            created = await insert_returning(self.session, Citizen, values, ["phone_hash"])
            if created is not None:
                return created  # with its name: no UPDATE after the INSERT
            found = await self.find_citizen(phone)
            assert found is not None
        if name:
            found.name_enc = self.cipher.encrypt(name, "name")
        return found

    def citizen_row(self, phone: str, name: str = "") -> dict[str, Any]:
        """The row of the citizen with this phone (E.164), for a caller that finds or creates it
        itself (a filing: `storage.filing.Filings`); `name_enc` None when no name is given."""
        return {
            "phone_hash": self.cipher.phone_hash(phone),
            "phone_enc": self.cipher.encrypt(phone, "phone"),
            "name_enc": self.cipher.encrypt(name, "name") if name else None,
            "created_at": utcnow(),
        }

    async def find_citizen(self, phone: str) -> Citizen | None:
        return await self.session.scalar(
            select(Citizen).where(Citizen.phone_hash == self.cipher.phone_hash(phone))
        )
