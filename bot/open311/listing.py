"""GET requests: cases as GeoReport service requests, read in a few queries per page, and
never with a name, a phone or an e-mail in them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func, select

from conversation.cases.citizen import CITIZEN_VISIBLE
from conversation.cases.due import next_deadline
from conversation.cases.lifecycle import FINISHED, STATUSES
from conversation.office import OfficeConfig
from storage.documents import deadlines_of
from storage.models import Attachment, Case, CaseEvent
from storage.times import iso, iso_or_none
from storage.uow import UnitOfWork

from .privacy import redact

MAX_REQUESTS = 1000
OPEN_STATUSES = tuple(status for status in STATUSES if status not in FINISHED)
CASE_STATUSES = {"open": OPEN_STATUSES, "closed": FINISHED}
MEDIA_KINDS = ("image", "video")


@dataclass(frozen=True)
class Wanted:
    """A checked GET requests query: codes (which override the rest), or services, statuses
    (`open` / `closed`) and a window of filing times."""

    codes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


async def find(uow: UnitOfWork, wanted: Wanted) -> list[Case]:
    """Newest first, at most MAX_REQUESTS. Only cases with a category are service requests."""
    query = select(Case).where(Case.category != "")
    if wanted.codes:
        query = query.where(Case.code.in_(wanted.codes))
    else:
        if wanted.services:
            query = query.where(Case.category.in_(wanted.services))
        if wanted.statuses:
            statuses = [s for status in wanted.statuses for s in CASE_STATUSES[status]]
            query = query.where(Case.status.in_(statuses))
        if wanted.start is not None:
            query = query.where(Case.created_at >= wanted.start)
        if wanted.end is not None:
            query = query.where(Case.created_at <= wanted.end)
    query = query.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)
    return list(await uow.session.scalars(query))


async def service_requests(
    uow: UnitOfWork, cases: list[Case], office: OfficeConfig
) -> list[dict[str, Any]]:
    """The cases as the spec's `request` items, with their latest step and first photo."""
    ids = [case.id for case in cases]
    steps = await _latest_steps(uow, ids) if ids else {}
    media = await _first_media(uow, ids) if ids else {}
    return [_request(case, steps.get(case.id), media.get(case.id), office, uow) for case in cases]


def _request(
    case: Case, step: CaseEvent | None, media: str | None, office: OfficeConfig, uow: UnitOfWork
) -> dict[str, Any]:
    name, phone = uow.cases.contact(case)
    known = (name, phone, phone.removeprefix("+86"))
    category = office.category(case.category)
    due = next_deadline(deadlines_of(case))
    tz: tzinfo = uow.tz
    return {
        "service_request_id": case.code,
        "status": "closed" if case.status in FINISHED else "open",
        "status_notes": redact(_notes(step, office), known) if step else None,
        "service_name": category.label("zh") if category else case.category,
        "service_code": case.category,
        "description": redact(case.description, known),
        "agency_responsible": case.department or None,
        "service_notice": None,
        "requested_datetime": iso(case.created_at, tz),
        "updated_datetime": iso(case.updated_at, tz),
        "expected_datetime": iso_or_none(due.due_at if due and due.office else None, tz),
        "address": redact(case.location_text, known) or None,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lng,
        "media_url": media,
    }


def _notes(step: CaseEvent, office: OfficeConfig) -> str:
    """The latest step a citizen is told of, in the words of their own status (办理经过)."""
    data = step.data or {}
    catalog = office.catalog
    key = f"history.{step.type}" if catalog.has(f"history.{step.type}") else "history.other"
    return catalog.text(
        "zh",
        key,
        department=data.get("department") or catalog.text("zh", "history.department"),
        note=data.get("note") or "",
        reason=data.get("reason") or "",
        rating=data.get("label") or "",
        days=data.get("days") or "",
    )


async def _latest_steps(uow: UnitOfWork, ids: list[int]) -> dict[int, CaseEvent]:
    latest = (
        select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
        .where(CaseEvent.case_id.in_(ids), CaseEvent.type.in_(CITIZEN_VISIBLE))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    rows = await uow.session.scalars(
        select(CaseEvent).join(
            latest, (CaseEvent.case_id == latest.c.case_id) & (CaseEvent.seq == latest.c.seq)
        )
    )
    return {event.case_id: event for event in rows}


async def _first_media(uow: UnitOfWork, ids: list[int]) -> dict[int, str]:
    rows = await uow.session.execute(
        select(Attachment.case_id, Attachment.url)
        .where(
            Attachment.case_id.in_(ids),
            Attachment.kind.in_(MEDIA_KINDS),
            Attachment.url.like("http%"),
        )
        .order_by(Attachment.case_id, Attachment.id)
    )
    media: dict[int, str] = {}
    for case_id, url in rows:
        media.setdefault(case_id, url)
    return media
