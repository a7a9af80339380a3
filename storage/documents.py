"""A case as JSON: the API's answer and the body of `case.submitted` (CONTRACTS.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, Protocol

from conversation.cases.due import Due, next_deadline, open_deadlines

from .models import Attachment, Case, CaseEvent
from .routing import co_departments
from .times import iso, iso_or_none, restamped
from .uow import UnitOfWork


def deadlines_json(case: Case, tz: tzinfo) -> dict[str, Any]:
    due = next_deadline(deadlines_of(case))
    return {
        "accept_by": iso_or_none(case.accept_due_at, tz),
        "finish_by": iso_or_none(case.finish_due_at, tz),
        "review_by": iso_or_none(case.review_due_at, tz),
        "extended_days": case.extended_days or 0,
        "extension_reason": case.extension_reason or "",
        "stages": [
            {k: restamped(v, tz) for k, v in stage.items() if k != "anchor"}
            for stage in case.stages or []
        ],
        "next": {"kind": due.kind, "due_at": iso(due.due_at, tz)} if due else None,
    }


class DueFacts(Protocol):
    """What decides a case's open deadlines: a `Case` row, or the in-memory store's record."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def accept_due_at(self) -> datetime | None: ...
    @property
    def finish_due_at(self) -> datetime | None: ...
    @property
    def review_due_at(self) -> datetime | None: ...
    @property
    def extended_days(self) -> int | None: ...
    @property
    def stages(self) -> list[dict[str, Any]]: ...


def deadlines_of(case: DueFacts) -> list[Due]:
    """The deadlines open on this case now (the rule is `conversation.cases.due`)."""
    return open_deadlines(
        kind=case.kind,
        status=case.status,
        accept_by=case.accept_due_at,
        finish_by=case.finish_due_at,
        review_by=case.review_due_at,
        extended_days=case.extended_days or 0,
        stages=case.stages or [],
    )


def rating_json(case: Case, tz: tzinfo) -> dict[str, Any] | None:
    if case.rating_score is None:
        return None
    return {
        "score": case.rating_score,
        "scale": case.rating_scale,
        "label": case.rating_label,
        "comment": case.rating_comment or "",
        "channel": case.rating_channel,
        "at": iso_or_none(case.rated_at, tz),
    }


def event_json(event: CaseEvent, tz: tzinfo) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "data": event.data,
        "at": iso(event.at, tz),
        "hash": event.hash,
    }


async def document_of(uow: UnitOfWork, case: Case, *, events: bool = False) -> dict[str, Any]:
    """The case as the API shows it, read through `uow` (with its timeline when `events`)."""
    timeline = await uow.events.events(case) if events else None
    attachments = await uow.cases.attachments(case)
    co = await co_departments(uow.session, case)
    return case_document(case, uow.cases.contact(case), attachments, timeline, uow.tz, co)


def case_document(
    case: Case,
    contact: tuple[str, str],
    attachments: list[Attachment],
    events: list[CaseEvent] | None,
    tz: tzinfo,
    co: Sequence[str] = (),
) -> dict[str, Any]:
    name, phone = contact
    document: dict[str, Any] = {
        "code": case.code,
        "status": case.status,
        "kind": case.kind,
        "category": case.category,
        "description": case.description,
        "location": {"text": case.location_text, "lat": case.lat, "lng": case.lng},
        # An anonymous case has no contact, whatever a caller passes in.
        "contact": {"name": "", "phone": ""} if case.anonymous else {"name": name, "phone": phone},
        "anonymous": bool(case.anonymous),
        "channel": case.channel,
        "source": case.source,
        "department": case.department,
        "co_departments": list(co),
        "owner": case.owner or "",
        "level": case.level or 0,
        "mailbox": case.mailbox or "",
        "outcome": case.outcome or None,
        "answers": case.answers,
        "risk_words": case.risk_words,
        "attachments": [
            {"kind": a.kind, "ref": a.ref, "url": a.url, "channel": a.channel} for a in attachments
        ],
        "created_at": iso(case.created_at, tz),
        "updated_at": iso(case.updated_at, tz),
        "deadlines": deadlines_json(case, tz),
        "rating": rating_json(case, tz),
    }
    if events is not None:
        document["events"] = [event_json(e, tz) for e in events]
    return document
