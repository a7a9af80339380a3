"""A case as JSON: the API's answer and the body of `case.submitted` (CONTRACTS.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .models import Attachment, Case, CaseEvent


class DueDates(Protocol):
    """What decides the next deadline: a `Case` row, or the in-memory store's record."""

    @property
    def status(self) -> str: ...
    @property
    def accept_due_at(self) -> datetime | None: ...
    @property
    def finish_due_at(self) -> datetime | None: ...
    @property
    def review_due_at(self) -> datetime | None: ...


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def deadlines_json(case: Case) -> dict[str, Any]:
    due = next_deadline(case)
    return {
        "accept_by": _iso(case.accept_due_at),
        "finish_by": _iso(case.finish_due_at),
        "review_by": _iso(case.review_due_at),
        "extended_days": case.extended_days or 0,
        "extension_reason": case.extension_reason or "",
        "stages": [{k: v for k, v in s.items() if k != "anchor"} for s in case.stages or []],
        "next": {"kind": due[0], "due_at": _iso(due[1])} if due else None,
    }


def next_deadline(case: DueDates) -> tuple[str, datetime] | None:
    """What is due next, by status: the decision on acceptance, completion, the review decision,
    or (after the reply) the end of the citizen's window to ask for a review."""
    if case.status == "submitted" and case.accept_due_at:
        return "accept", case.accept_due_at
    if case.status in ("accepted", "assigned", "returned") and case.finish_due_at:
        return "finish", case.finish_due_at
    if case.status == "review_requested" and case.finish_due_at:
        return "review_decision", case.finish_due_at
    if case.status == "replied" and case.review_due_at:
        return "review", case.review_due_at
    return None


def rating_json(case: Case) -> dict[str, Any] | None:
    if case.rating_score is None:
        return None
    return {
        "score": case.rating_score,
        "scale": case.rating_scale,
        "label": case.rating_label,
        "comment": case.rating_comment or "",
        "channel": case.rating_channel,
        "at": _iso(case.rated_at),
    }


def event_json(event: CaseEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "data": event.data,
        "at": event.at.isoformat(),
        "hash": event.hash,
    }


def case_document(
    case: Case,
    contact: tuple[str, str],
    attachments: list[Attachment],
    events: list[CaseEvent] | None = None,
) -> dict[str, Any]:
    name, phone = contact
    document: dict[str, Any] = {
        "code": case.code,
        "status": case.status,
        "kind": case.kind,
        "category": case.category,
        "description": case.description,
        "location": {"text": case.location_text, "lat": case.lat, "lng": case.lng},
        "contact": {"name": name, "phone": phone},
        "channel": case.channel,
        "source": case.source,
        "department": case.department,
        "answers": case.answers,
        "risk_words": case.risk_words,
        "attachments": [
            {"kind": a.kind, "ref": a.ref, "url": a.url, "channel": a.channel} for a in attachments
        ],
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "deadlines": deadlines_json(case),
        "rating": rating_json(case),
    }
    if events is not None:
        document["events"] = [event_json(e) for e in events]
    return document
