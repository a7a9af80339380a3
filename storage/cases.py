"""Cases: filing with a fresh code, finding by code or owner, listing for the back office."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from conversation.codes import new_case_code

from .crypto import PiiCipher
from .models import Attachment, Case, CaseAccess, Identity, UTCDateTime
from .routing import handled_by


class Cases:
    def __init__(self, session: AsyncSession, cipher: PiiCipher) -> None:
        self.session = session
        self.cipher = cipher

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
    ) -> list[Case]:
        query = _of_identity(bool(statuses), bool(kinds), bool(category), since is not None)
        params = {
            "asker_channel": channel,
            "asker_external_id": external_id,
            "statuses": list(statuses),
            "kinds": list(kinds),
            "category": category,
            "since": since,
            "limit": limit,
        }
        return list(await self.session.scalars(query, params))

    async def owned(self, channel: str, external_id: str, code: str) -> Case | None:
        """The case only if it is this identity's: one query, so unknown and foreign look alike."""
        params = {"asker_channel": channel, "asker_external_id": external_id, "code": code}
        return await self.session.scalar(_OWNED_CODE, params)

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


def _owned_by() -> Select[Case]:
    """The cases that are the asker's own (`asker_channel`, `asker_external_id`): filed from
    this identity, or — once the asker has proved they hold the phone — filed for that citizen
    anywhere (by a grid worker, a kiosk), or one this identity proved with its 查询码 or 验证码
    (storage/proof.py). Built once: a chat asks it on every 菜单, 进度查询 and submit."""
    asker = aliased(Identity)
    granted = (
        select(CaseAccess.id)
        .where(CaseAccess.identity_id == asker.id, CaseAccess.case_id == Case.id)
        .exists()
    )
    return (
        select(Case)
        .join(
            asker,
            and_(
                asker.channel == bindparam("asker_channel"),
                asker.external_id == bindparam("asker_external_id"),
            ),
        )
        .where(
            or_(
                Case.identity_id == asker.id,
                and_(asker.citizen_proven_at.is_not(None), Case.citizen_id == asker.citizen_id),
                granted,
            )
        )
    )


_OWNED = _owned_by()
_OWNED_CODE = _OWNED.where(Case.code == bindparam("code"))


@cache
def _of_identity(statuses: bool, kinds: bool, category: bool, since: bool) -> Select[Case]:
    """The asker's own cases, newest first, with the filters asked for (built once each)."""
    query = _OWNED.order_by(Case.created_at.desc(), Case.id.desc()).limit(
        bindparam("limit", type_=Integer)
    )
    if statuses:
        query = query.where(Case.status.in_(bindparam("statuses", expanding=True)))
    if kinds:
        query = query.where(Case.kind.in_(bindparam("kinds", expanding=True)))
    if category:
        query = query.where(Case.category == bindparam("category"))
    if since:
        query = query.where(Case.created_at >= bindparam("since", type_=UTCDateTime()))
    return query


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
