"""Re-encrypt personal data under a new key (`minyi keys rotate`), in batches, resumably.

The cipher holds the new key and the old one (MINYI_PII_KEY, MINYI_PII_KEY_OLD). Each batch
is one transaction; a value the new key already opens is left alone, so a run that was stopped
simply starts again and skips what is done. The keyed phone hashes (citizens, surveys) are
recomputed from the decrypted phones. Only when every table is done does the database's key
check (storage/keycheck.py) name the new key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from .crypto import PiiCipher
from .db import Database
from .files import SealedFileStore
from .keycheck import SEALED, KeyMismatch, set_check, stored_check
from .models import Attachment, Case, Citizen, Survey, Upload
from .photos import thumbnail_key

Progress = Callable[[str, int, int], None]  # table, rows done, rows in the table


@dataclass
class Rotated:
    """What a run did: rows looked at, values re-encrypted, hashes recomputed."""

    rows: int = 0
    resealed: int = 0
    rehashed: int = 0


def _by_table() -> dict[Any, list[tuple[str, str]]]:
    """The sealed columns grouped by their model: model -> [(attribute, field)]."""
    tables: dict[Any, list[tuple[str, str]]] = {}
    for column, field in SEALED:
        tables.setdefault(column.class_, []).append((column.key, field))
    return tables


async def rotate(
    db: Database,
    cipher: PiiCipher,
    *,
    batch: int = 500,
    progress: Progress | None = None,
    files: SealedFileStore | None = None,
) -> Rotated:
    if cipher.old_check is None:
        raise KeyMismatch("MINYI_PII_KEY_OLD: set it to the key in use now to rotate from it")
    stored = await stored_check(db)
    if stored not in (None, cipher.old_check, cipher.check):
        raise KeyMismatch(
            "MINYI_PII_KEY_OLD: this is not the key the database's personal data is encrypted with"
        )
    done = Rotated()
    for model, columns in _by_table().items():
        await _reseal(db, cipher, model, columns, batch, progress, done)
    await _rehash_surveys(db, cipher, batch, progress, done)
    if files is not None:
        await _reseal_files(db, files, batch, progress, done)
    async with db.session() as session:
        await set_check(session, cipher.check)
        await session.commit()
    return done


async def _reseal(
    db: Database,
    cipher: PiiCipher,
    model: Any,
    columns: list[tuple[str, str]],
    batch: int,
    progress: Progress | None,
    done: Rotated,
) -> None:
    key = model.__mapper__.primary_key[0]
    async with db.session() as session:
        total = await session.scalar(select(func.count()).select_from(model)) or 0
    seen, last = 0, None
    while True:
        async with db.session() as session:
            query = select(model).order_by(key).limit(batch).with_for_update()
            if last is not None:
                query = query.where(key > last)
            rows = (await session.scalars(query)).all()
            if not rows:
                break
            for row in rows:
                for attribute, field in columns:
                    blob = getattr(row, attribute)
                    if blob and not cipher.sealed_by_current(blob, field):
                        setattr(row, attribute, cipher.encrypt(cipher.decrypt(blob, field), field))
                        done.resealed += 1
                if model is Citizen:
                    fresh = cipher.phone_hash(cipher.decrypt(row.phone_enc, "phone"))
                    if row.phone_hash != fresh:
                        row.phone_hash = fresh
                        done.rehashed += 1
            last = getattr(rows[-1], key.key)
            await session.commit()
        seen += len(rows)
        done.rows += len(rows)
        if progress is not None:
            progress(model.__tablename__, seen, total)


async def _reseal_files(
    db: Database, files: SealedFileStore, batch: int, progress: Progress | None, done: Rotated
) -> None:
    """Citizens' photos and their thumbnails, sealed again under the new key: the cases', then
    those no case holds yet (an open form's; storage/uploads.py)."""
    for table, model in (("attachments (files)", Attachment), ("uploads (files)", Upload)):
        await _reseal_some(db, files, batch, progress, done, table, model)


async def _reseal_some(
    db: Database,
    files: SealedFileStore,
    batch: int,
    progress: Progress | None,
    done: Rotated,
    table: str,
    model: type[Attachment] | type[Upload],
) -> None:
    async with db.session() as session:
        total = (
            await session.scalar(
                select(func.count()).select_from(model).where(model.file_key.is_not(None))
            )
            or 0
        )
    seen, last = 0, 0
    while True:
        async with db.session() as session:
            rows = list(
                await session.execute(
                    select(model.id, model.file_key)
                    .where(model.file_key.is_not(None), model.id > last)
                    .order_by(model.id)
                    .limit(batch)
                )
            )
        if not rows:
            break
        for _, key in rows:
            for each in (str(key), thumbnail_key(str(key))):
                done.resealed += await files.reseal(each)
        last = rows[-1][0]
        seen += len(rows)
        done.rows += len(rows)
        if progress is not None:
            progress(table, seen, total)


async def _rehash_surveys(
    db: Database, cipher: PiiCipher, batch: int, progress: Progress | None, done: Rotated
) -> None:
    """A survey finds an SMS answer by the hash of its case's phone: recompute it."""
    async with db.session() as session:
        total = (
            await session.scalar(
                select(func.count()).select_from(Survey).where(Survey.phone_hash.is_not(None))
            )
            or 0
        )
    seen, last = 0, 0
    while True:
        async with db.session() as session:
            rows = (
                await session.execute(
                    select(Survey, Case.contact_phone_enc)
                    .join(Case, Case.id == Survey.case_id)
                    .where(Survey.id > last, Survey.phone_hash.is_not(None))
                    .order_by(Survey.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                break
            for survey, phone_enc in rows:
                if phone_enc:
                    fresh = cipher.phone_hash(cipher.decrypt(phone_enc, "phone"))
                    if survey.phone_hash != fresh:
                        survey.phone_hash = fresh
                        done.rehashed += 1
            last = rows[-1][0].id
            await session.commit()
        seen += len(rows)
        if progress is not None:
            progress("surveys", seen, total)
