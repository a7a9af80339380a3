"""A case as JSON: the API's answer and the body of `case.submitted` (CONTRACTS.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversation.cases.due import Due, next_deadline, open_deadlines

from .models import Attachment, Case, CaseEvent


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def deadlines_json(case: Case) -> dict[str, Any]:
    due = next_deadline(deadlines_of(case))
    return {
        "accept_by": _iso(case.accept_due_at),
        "finish_by": _iso(case.finish_due_at),
        "review_by": _iso(case.review_due_at),
        "extended_days": case.extended_days or 0,
        "extension_reason": case.extension_reason or "",
        "stages": [{k: v for k, v in s.items() if k != "anchor"} for s in case.stages or []],
        "next": {"kind": due.kind, "due_at": _iso(due.due_at)} if due else None,
    }


def deadlines_of(case: Case) -> list[Due]:
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
