"""The case lifecycle the back office walks (收件 → 交办 → 处置 → 反馈), and what each step changes.

submitted → accepted (受理) or redirected (不予受理 / 转法定途径, 诉访分离); accepted → assigned
(交办) ⇄ returned (退回); → replied (答复) → closed (办结) → rated; review_requested (复查) reopens.
`extended` (延期, once, ≤ 30 days, with a reason) and `note` change no status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.backoffice.deadlines import MAX_EXTENSION_DAYS, LegalDeadlines
from bot.backoffice.surveys import SurveyRules, open_survey
from storage.models import Case, CaseEvent
from storage.uow import UnitOfWork

STATUSES = (
    "submitted",
    "accepted",
    "redirected",
    "assigned",
    "returned",
    "replied",
    "closed",
    "rated",
    "review_requested",
)
# event type → {status it may follow: status it leads to}
TRANSITIONS: dict[str, dict[str, str]] = {
    "accepted": {"submitted": "accepted", "review_requested": "accepted"},
    "redirected": {"submitted": "redirected"},
    "assigned": {"accepted": "assigned", "returned": "assigned", "review_requested": "assigned"},
    "returned": {"assigned": "returned"},
    "replied": {"accepted": "replied", "assigned": "replied", "review_requested": "replied"},
    "closed": {"replied": "closed"},
    "extended": {s: s for s in ("accepted", "assigned", "returned", "review_requested")},
    "note": {s: s for s in STATUSES},
}
EVENT_TYPES = tuple(TRANSITIONS)
# What the back office must say for each step (and why): the citizen is told it.
REQUIRED: dict[str, tuple[str, ...]] = {
    "redirected": ("reason", "department"),  # why not accepted, and where to go instead
    "assigned": ("department",),
    "returned": ("reason",),
    "replied": ("note",),  # the answer itself
    "extended": ("reason",),
    "note": ("note",),
}
# Steps the citizen hears about on their own channel.
CITIZEN_TOPICS = frozenset({"accepted", "redirected", "replied", "closed", "extended"})
LIMITS = {"note": 5000, "reason": 1000, "department": 100, "staff": 100, "stage": 40}


class IllegalTransition(Exception):
    def __init__(self, status: str, event: str, reason: str = "") -> None:
        self.status, self.event = status, event
        allowed = sorted(t for t, moves in TRANSITIONS.items() if status in moves and t != "note")
        nxt = ", ".join(allowed) if allowed else "only notes"
        super().__init__(
            reason or f"The case is {status}; '{event}' cannot follow. Possible next: {nxt}."
        )


class InvalidProgress(ValueError):
    """The request body is wrong; the message says what to send instead."""


@dataclass(frozen=True)
class Progress:
    """One step reported by the back office (the body of POST /api/v1/cases/{code}/events)."""

    type: str
    note: str = ""
    department: str = ""
    staff: str = ""
    reason: str = ""
    days: int = MAX_EXTENSION_DAYS
    stage: str = ""

    @classmethod
    def from_json(cls, body: Any) -> Progress:
        if not isinstance(body, dict):
            raise InvalidProgress("The body must be a JSON object with at least a 'type'.")
        unknown = set(body) - {"type", "note", "department", "staff", "reason", "days", "stage"}
        if unknown:
            raise InvalidProgress(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        kind = body.get("type")
        if kind not in TRANSITIONS:
            raise InvalidProgress(f"'type' must be one of: {', '.join(EVENT_TYPES)}.")
        values: dict[str, Any] = {"type": kind}
        for name, limit in LIMITS.items():
            value = body.get(name, "")
            if not isinstance(value, str):
                raise InvalidProgress(f"'{name}' must be text.")
            if len(value) > limit:
                raise InvalidProgress(f"'{name}' is longer than {limit} characters.")
            values[name] = value.strip()
        for name in REQUIRED.get(kind, ()):
            if not values[name]:
                raise InvalidProgress(f"A '{kind}' event needs '{name}'.")
        if "days" in body:
            days = body["days"]
            if kind != "extended":
                raise InvalidProgress("'days' belongs to an 'extended' event only.")
            if (
                isinstance(days, bool)
                or not isinstance(days, int)
                or not 1 <= days <= MAX_EXTENSION_DAYS
            ):
                raise InvalidProgress(
                    f"'days' must be a whole number from 1 to {MAX_EXTENSION_DAYS}."
                )
            values["days"] = days
        return cls(**values)

    def data(self) -> dict[str, Any]:
        """What goes on the timeline: the fields that were given."""
        fields = {
            "note": self.note,
            "department": self.department,
            "staff": self.staff,
            "reason": self.reason,
            "stage": self.stage,
        }
        data: dict[str, Any] = {k: v for k, v in fields.items() if v}
        if self.type == "extended":
            data["days"] = self.days
        return data


async def record_progress(
    uow: UnitOfWork,
    case: Case,
    step: Progress,
    deadlines: LegalDeadlines,
    now: datetime,
    surveys: SurveyRules | None = None,
) -> CaseEvent:
    """Apply one step: status, deadlines and stages, timeline, `case.updated`, citizen notice.

    The caller holds the case row (`by_code(for_update=True)`) and commits.
    """
    following = TRANSITIONS[step.type].get(case.status)
    if following is None:
        raise IllegalTransition(case.status, step.type)
    data = step.data()
    if step.type == "extended":
        if case.extended_days:
            raise IllegalTransition(
                case.status,
                step.type,
                "The case was extended once already; the law allows one extension.",
            )
        base = case.finish_due_at or deadlines.finish_due(case.accepted_at or now)
        case.finish_due_at = deadlines.extended(base, step.days)
        case.extended_days, case.extension_reason = step.days, step.reason
        data["finish_by"] = case.finish_due_at.isoformat()
    elif step.type == "accepted":
        case.accepted_at = now
        case.finish_due_at = deadlines.finish_due(now)
        data["finish_by"] = case.finish_due_at.isoformat()
    elif step.type in ("assigned", "redirected"):
        case.department = step.department
    elif step.type == "replied":
        case.replied_at = now
        case.review_due_at = deadlines.review_request_until(now)
        data["review_by"] = case.review_due_at.isoformat()
    elif step.type == "closed":
        case.closed_at = now
    if following != case.status and following in ("accepted", "assigned"):
        case.stages = [s for s in case.stages if not _same_anchor(s, following)] + [
            {**s, "anchor": following} for s in deadlines.stages_from(following, now)
        ]
    if step.stage:
        case.stages = [_met(s, step.stage, now) for s in case.stages]
    case.status = following
    actor = f"staff:{step.staff}" if step.staff else "backoffice"
    event = await uow.events.append(case, step.type, actor, data, at=now)
    await uow.outbox.add(
        "case.updated",
        case.code,
        {
            "status": case.status,
            "event": {"seq": event.seq, "type": step.type, "at": now.isoformat(), **data},
        },
    )
    if step.type in CITIZEN_TOPICS:
        await uow.notifications.add(
            f"citizen:{case.code}:{event.seq}",
            "citizen",
            step.type,
            case,
            {"event_seq": event.seq, **data},
        )
    if step.type == "closed":
        await open_survey(uow, case, surveys or SurveyRules(), now)
    return event


def _same_anchor(stage: dict[str, Any], anchor: str) -> bool:
    return stage.get("anchor") == anchor and not stage.get("met_at")


def _met(stage: dict[str, Any], name: str, now: datetime) -> dict[str, Any]:
    if stage.get("name") == name and not stage.get("met_at"):
        return {**stage, "met_at": now.isoformat()}
    return stage
