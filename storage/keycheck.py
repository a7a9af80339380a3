"""The personal-data key, recognised by the database it encrypts.

A missing key file or another MINYI_PII_KEY used to make a new key silently: old cases then
failed to open and new ones were written under a second key. The database now keeps a check of
its key (an HMAC of a constant, storage/crypto.py `key_check`) and start-up refuses a key that
does not match it, naming where the key came from; a new key is never made for a database that
already holds encrypted rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .crypto import PiiCipher
from .db import Database
from .models import (
    Case,
    Citizen,
    Conversation,
    Identity,
    InboundDedupe,
    KeyCheck,
    MailboxMessage,
    OutboxEntry,
    StaffThreadMessage,
    utcnow,
)
from .people import SMS_ROUTE

CHECK = "pii"

# Every encrypted column and the field name bound into its ciphertexts (rotation walks these).
SEALED: tuple[tuple[Any, str], ...] = (
    (Citizen.phone_enc, "phone"),
    (Citizen.name_enc, "name"),
    (Case.contact_phone_enc, "phone"),
    (Case.contact_name_enc, "name"),
    (Identity.phone_enc, SMS_ROUTE),
    (OutboxEntry.private_enc, "outbox"),
    (MailboxMessage.reply, "mailbox"),
    (StaffThreadMessage.text_enc, "thread-message"),
    (Conversation.state, "conversation"),
    (InboundDedupe.replies, "replies"),
)


class KeyMismatch(Exception):
    """The key cannot be the database's; the message is one line naming where it came from."""


@dataclass(frozen=True)
class KeySource:
    """Where the key came from, to name it in errors; a new key file is written only once the
    database has accepted the key."""

    name: str  # "MINYI_PII_KEY" or the key file's path
    key: bytes
    new_file: Path | None = None


async def guard(db: Database, cipher: PiiCipher, source: KeySource) -> None:
    """Accept the key only if it is the database's; record its check on first use."""
    async with db.session() as session:
        stored = await session.get(KeyCheck, CHECK)
        sample = await _sample(session) if stored is None else None
        if source.new_file is not None and (stored is not None or sample is not None):
            raise KeyMismatch(
                f"{source.new_file}: the personal-data key file is missing, but the database "
                "holds data encrypted under a key; restore the file (or set MINYI_PII_KEY) "
                "instead of letting a new key make that data unreadable"
            )
        if stored is not None:
            if stored.value not in (cipher.check, cipher.old_check):
                raise KeyMismatch(_mismatch(source))
            return
        if sample is not None and not cipher.opens(*sample):
            raise KeyMismatch(_mismatch(source))
        session.add(KeyCheck(name=CHECK, value=cipher.check, updated_at=utcnow()))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # another process recorded it first: compare with theirs
            stored = await session.get(KeyCheck, CHECK)
            if stored is None or stored.value not in (cipher.check, cipher.old_check):
                raise KeyMismatch(_mismatch(source)) from None


async def matches(db: Database, cipher: PiiCipher) -> bool:
    """For /readyz: the database still knows this key (a restore may have brought another)."""
    async with db.session() as session:
        stored = await session.scalar(select(KeyCheck.value).where(KeyCheck.name == CHECK))
    return stored is None or stored in (cipher.check, cipher.old_check)


async def set_check(session: AsyncSession, check: str) -> None:
    stored = await session.get(KeyCheck, CHECK)
    if stored is None:
        session.add(KeyCheck(name=CHECK, value=check, updated_at=utcnow()))
    else:
        stored.value, stored.updated_at = check, utcnow()


async def stored_check(db: Database) -> str | None:
    async with db.session() as session:
        return await session.scalar(select(KeyCheck.value).where(KeyCheck.name == CHECK))


async def _sample(session: AsyncSession) -> tuple[bytes, str] | None:
    """One encrypted value and its field, if the database holds any."""
    for column, field in SEALED:
        blob = await session.scalar(select(column).where(column.is_not(None)).limit(1))
        if blob:
            return bytes(blob), field
    return None


def _mismatch(source: KeySource) -> str:
    return (
        f"{source.name}: this is not the key the database's personal data is encrypted with; "
        "start with the key it was written under (see 'Key rotation' in the README to change it)"
    )
