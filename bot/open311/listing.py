"""GET requests: cases as GeoReport service requests, read in a few queries per page, and
never with a name, a phone or an e-mail in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Row, select

from conversation.cases.citizen import CITIZEN_VISIBLE
from conversation.cases.due import next_deadline, open_deadlines
from conversation.cases.lifecycle import FINISHED, STATUSES
from conversation.office import OfficeConfig
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


# Only what a request shows is read: a page is 1,000 rows, and whole cases would decode every
# JSON column and fill the session's identity map for nothing.
COLUMNS = (
    Case.id,
    Case.code,
    Case.kind,
    Case.category,
    Case.description,
    Case.location_text,
    Case.lat,
    Case.lng,
    Case.status,
    Case.department,
    Case.contact_name_enc,
    Case.contact_phone_enc,
    Case.created_at,
    Case.updated_at,
    Case.accept_due_at,
    Case.finish_due_at,
    Case.review_due_at,
    Case.extended_days,
)


def _latest_step(column: Any) -> Any:
    """The case's latest step a citizen is told of (one index probe per case shown)."""
    return (
        select(column)
        .where(CaseEvent.case_id == Case.id, CaseEvent.type.in_(CITIZEN_VISIBLE))
        .order_by(CaseEvent.seq.desc())
        .limit(1)
        .scalar_subquery()
    )


MEDIA = (
    select(Attachment.url)
    .where(
        Attachment.case_id == Case.id,
        Attachment.kind.in_(MEDIA_KINDS),
        Attachment.url.like("http%"),
    )
    .order_by(Attachment.id)
    .limit(1)
    .scalar_subquery()
)


async def find(uow: UnitOfWork, wanted: Wanted, shown: Sequence[str]) -> list[Row[Any]]:
    """Newest first, at most MAX_REQUESTS, each with its latest step and first photo, in one
    query. Only cases of the `shown` categories are service requests."""
    query = select(
        *COLUMNS,
        _latest_step(CaseEvent.type).label("step_type"),
        _latest_step(CaseEvent.data).label("step_data"),
        MEDIA.label("media_url"),
    ).where(Case.category.in_(shown))
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
    return list(await uow.session.execute(query))


def service_requests(
    uow: UnitOfWork, cases: list[Row[Any]], office: OfficeConfig
) -> list[dict[str, Any]]:
    """The cases as the spec's `request` items."""
    return [_request(case, office, uow) for case in cases]


# Statuses before any 交办, or where the citizen was sent elsewhere: no agency is responsible.
UNROUTED = frozenset({"submitted", "accepted", "redirected"})


def _request(case: Any, office: OfficeConfig, uow: UnitOfWork) -> dict[str, Any]:
    name, phone = uow.cases.contact(case)
    known = (name, phone, phone.removeprefix("+86"))
    category = office.category(case.category)
    # The office's next legal limit: what it expects to have done by (stages are internal).
    due = next_deadline(
        open_deadlines(
            kind=case.kind,
            status=case.status,
            accept_by=case.accept_due_at,
            finish_by=case.finish_due_at,
            review_by=case.review_due_at,
            extended_days=case.extended_days or 0,
        )
    )
    tz: tzinfo = uow.tz
    return {
        "service_request_id": case.code,
        "status": "closed" if case.status in FINISHED else "open",
        "status_notes": redact(_notes(case, office), known) if case.step_type else None,
        "service_name": category.label("zh") if category else case.category,
        "service_code": case.category,
        "description": redact(case.description, known),
        # The department a case starts with is the office's suggestion: shown once it is 交办.
        "agency_responsible": (
            office.departments.name(case.department) or None
            if case.status not in UNROUTED
            else None
        ),
        "service_notice": None,
        "requested_datetime": iso(case.created_at, tz),
        "updated_datetime": iso(case.updated_at, tz),
        "expected_datetime": iso_or_none(due.due_at if due and due.office else None, tz),
        "address": redact(case.location_text, known) or None,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lng,
        "media_url": case.media_url,
    }


def _notes(case: Any, office: OfficeConfig) -> str:
    """The latest step a citizen is told of, in the words of their own status (办理经过)."""
    data = case.step_data or {}
    catalog = office.catalog
    step = case.step_type
    key = f"history.{step}" if catalog.has(f"history.{step}") else "history.other"
    return catalog.text(
        "zh",
        key,
        department=office.departments.name(str(data.get("department") or ""))
        or catalog.text("zh", "history.department"),
        note=data.get("note") or "",
        reason=data.get("reason") or "",
        rating=data.get("label") or "",
        days=data.get("days") or "",
        outcome=catalog.text("zh", f"outcome.{data['outcome']}") if data.get("outcome") else "",
    )
