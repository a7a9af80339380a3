"""The ledger of photos kept and not yet known to be a case's (table `uploads`).

A photo's row is written before its files, so a file is never in the store untracked: the
orphan sweep (bot/backoffice/photo_sweep.py) deletes what no case took, once the conversation
that uploaded it has ended, and forgets the rows of those a case took. A case's photo let go
(an erasure, an archive) is put back in the ledger in the same transaction that lets it go, so
its files are deleted even by a later sweep when the deletion right after fails."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from .files import FileStore, thumbnail_key
from .models import Upload
from .people import insert_ignoring_duplicates

log = logging.getLogger(__name__)

# What a photo let go is marked with: older than any sweep's age, so the next sweep takes it.
LET_GO = datetime(2000, 1, 1, tzinfo=UTC)


def file_keys(key: str) -> tuple[str, str]:
    """Both files of a photo: the photo and its thumbnail."""
    return key, thumbnail_key(key)


async def record(session: AsyncSession, key: str, conversation: str, now: datetime) -> None:
    await insert_ignoring_duplicates(
        session,
        Upload,
        {"file_key": key, "conversation": conversation, "seen_at": now},
        ["file_key"],
    )


async def let_go(session: AsyncSession, keys: list[str]) -> None:
    """Mark photos no case keeps any more for deletion (in the caller's transaction): the
    next sweep deletes them, whatever conversation uploaded them."""
    if not keys:
        return
    await session.execute(
        update(Upload)
        .where(Upload.file_key.in_(keys))
        .values(conversation="", seen_at=LET_GO)
        .execution_options(synchronize_session=False)
    )
    for key in keys:
        await insert_ignoring_duplicates(
            session,
            Upload,
            {"file_key": key, "conversation": "", "seen_at": LET_GO},
            ["file_key"],
        )


async def delete_files(files: FileStore, key: str) -> None:
    for each in file_keys(key):
        await files.delete(each)
