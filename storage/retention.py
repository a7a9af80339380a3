"""信访档案 and PIPL: closed cases kept for the office's retention period, then archived (one JSON
file per case, with its timeline, attachments and the chain's last hash, and its photos beside
it) and their personal data erased, the erasure itself written on the timeline.

What is erased: the contact's name and phone on the case, the form's free answers, the rating's
comment, the citizen's and staff's words in conversations about the case, the encrypted contact in the
case's outbox events, the survey's phone hash, and the person (citizen row) once no case of
theirs keeps them. The timeline is append-only and hash-chained, so its events stay as written;
the archive holds everything, and the chain still verifies after the erasure, which is its last
event. The photos (faces, number plates) go with the case: written to `<code>.photos/` beside
its JSON, which lists each with its SHA-256 (so the erasure's archive hash covers them too),
then deleted from the live file store once the erasure is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, select, update

from .case_photos import case_photos
from .citizen_export import thread_words
from .documents import document_of
from .files import FileStore
from .models import (
    Attachment,
    Case,
    CaseEvent,
    Citizen,
    Identity,
    OutboxEntry,
    StaffThread,
    StaffThreadMessage,
    Survey,
    Upload,
    utcnow,
)
from .times import iso
from .uow import UnitOfWork, Units
from .uploads import delete_files, let_go

log = logging.getLogger(__name__)

ERASED = "erased"
ACTOR = "system:retention"
CLOSED = ("closed", "rated")


@dataclass(frozen=True)
class Retention:
    """Years a closed case is kept, per kind; a kind not named is kept for good."""

    years: dict[str, int]

    def cutoff(self, kind: str, now: datetime) -> datetime | None:
        years = self.years.get(kind)
        return None if years is None else now - timedelta(days=365 * years + years // 4)


async def due(units: Units, retention: Retention, now: datetime | None = None) -> list[str]:
    """Codes of closed cases past their retention and not yet erased, oldest first."""
    now = now or utcnow()
    codes: list[str] = []
    async with units() as uow:
        for kind in retention.years:
            cutoff = retention.cutoff(kind, now)
            assert cutoff is not None
            rows = await uow.session.scalars(
                select(Case.code)
                .where(
                    Case.kind == kind,
                    Case.status.in_(CLOSED),
                    Case.closed_at.is_not(None),
                    Case.closed_at < cutoff,
                    ~exists().where(CaseEvent.case_id == Case.id, CaseEvent.type == ERASED),
                )
                .order_by(Case.closed_at)
            )
            codes += list(rows)
    return codes


async def archive_and_erase(
    units: Units,
    retention: Retention,
    folder: Path,
    code: str,
    now: datetime | None = None,
    *,
    files: FileStore | None = None,
) -> Path:
    """Write the case's archive to `folder/<code>.json` (its photos, opened from `files`, to
    `folder/<code>.photos/`), then erase its personal data in one transaction, and delete its
    photos from the live store. The archive is complete before anything is erased; a run that
    stops between the two writes it again next time."""
    now = now or utcnow()
    async with units() as uow:
        case = await uow.cases.by_code(code, for_update=True)
        if case is None:
            raise LookupError(code)
        events = await uow.events.events(case)
        photos = []
        if files is not None:
            photos = await case_photos(uow, case, files)
        elif any(a.file_key for a in await uow.cases.attachments(case)):
            raise ValueError(f"{code} has photos: archive it with the file store")
        listed = []
        if photos:
            (folder / f"{case.code}.photos").mkdir(mode=0o700, parents=True, exist_ok=True)
        for photo in photos:
            name = f"{case.code}.photos/{photo.attachment}.jpg"
            if photo.data is not None:
                _write(folder / name, photo.data)
            listed.append(photo.entry(name))
        archive = {
            "case": await document_of(uow, case, events=True),
            "photos": listed,
            "conversations_with_staff": await thread_words(uow, case),
            "chain": {"events": len(events), "last_hash": events[-1].hash if events else None},
            "archived_at": iso(now, uow.tz),
            "retention_years": retention.years.get(case.kind),
        }
        body = json.dumps(archive, ensure_ascii=False, indent=2).encode("utf-8")
        path = _write(folder / f"{case.code}.json", body)
        let_go_keys = await _erase(uow, case)
        await uow.events.append(
            case,
            ERASED,
            ACTOR,
            {
                "archive_sha256": hashlib.sha256(body).hexdigest(),
                "retention_years": retention.years.get(case.kind),
                "photos": len(listed),
            },
            at=now,
        )
        await uow.commit()
    if files is not None and let_go_keys:
        await forget_photos(units, files, let_go_keys)
    return path


async def forget_photos(units: Units, files: FileStore, keys: list[str]) -> None:
    """Delete photos no case keeps any more (they are in the ledger already, marked let go:
    what fails here, the orphan sweep deletes later)."""
    try:
        for key in keys:
            await delete_files(files, key)
    except Exception as exc:
        log.warning("photos let go not deleted yet (%s); the photo sweep will", exc)
        return
    async with units() as uow:
        await uow.session.execute(delete(Upload).where(Upload.file_key.in_(keys)))
        await uow.commit()


async def _erase(uow: UnitOfWork, case: Case) -> list[str]:
    """Erase the case's personal data; the keys of the photos it let go (to delete)."""
    keys = [a.file_key for a in await uow.cases.attachments(case) if a.file_key]
    await uow.session.execute(
        update(Attachment).where(Attachment.case_id == case.id).values(file_key=None)
    )
    await let_go(uow.session, keys)
    case.contact_name_enc = None
    case.contact_phone_enc = None
    case.answers = {}
    case.rating_comment = None
    citizen_id, case.citizen_id = case.citizen_id, None
    threads = select(StaffThread.id).where(StaffThread.case_id == case.id)
    await uow.session.execute(
        delete(StaffThreadMessage).where(StaffThreadMessage.thread_id.in_(threads))
    )
    await uow.session.execute(
        update(OutboxEntry).where(OutboxEntry.case_code == case.code).values(private_enc=None)
    )
    await uow.session.execute(
        update(Survey).where(Survey.case_id == case.id).values(phone_hash=None)
    )
    # The mobile kept as the way back to an SMS conversation staff talked with about the case.
    await uow.session.execute(
        update(Identity)
        .where(
            Identity.phone_enc.is_not(None),
            exists().where(
                StaffThread.case_id == case.id,
                StaffThread.channel == Identity.channel,
                StaffThread.external_id == Identity.external_id,
            ),
        )
        .values(phone_enc=None)
    )
    await uow.session.flush()
    if citizen_id is None:
        return keys
    others = await uow.session.scalar(
        select(func.count()).select_from(Case).where(Case.citizen_id == citizen_id)
    )
    if not others:  # nothing of theirs is kept any more: the person goes too
        await uow.session.execute(
            update(Identity)
            .where(Identity.citizen_id == citizen_id)
            .values(citizen_id=None, citizen_proven_at=None, phone_enc=None)
        )
        await uow.session.execute(delete(Citizen).where(Citizen.id == citizen_id))
    return keys


def _write(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return path


def parse_years(value: str) -> dict[str, Any]:
    """`petition=10,suggestion=3` → {"petition": 10, "suggestion": 3}; ValueError with a sentence."""
    years: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        kind, _, number = item.partition("=")
        if not number.strip().isdigit() or not 1 <= int(number) <= 100:
            raise ValueError(f"{item!r}: write kind=years, e.g. petition=10 (1–100 years)")
        years[kind.strip()] = int(number)
    return years
