"""Which lifecycle steps the desk offers, and the words each one asks for."""

from __future__ import annotations

from typing import Any

from bot.desk.policy import Staff, may_take
from bot.desk.progress import LIMITS, MAX_EXTENSION_DAYS, REQUIRED, TRANSITIONS
from conversation.cases.kinds import kind_of
from conversation.cases.progress import OUTCOMES
from storage.models import Case

# Button order on the page, the way a case moves.
ORDER = (
    "accepted",
    "redirected",
    "assigned",
    "returned",
    "replied",
    "closed",
    "extended",
    "adopted",
    "instructed",
    "note",
)
# The words each step asks for, in the order the small form shows them.
FIELDS: dict[str, tuple[str, ...]] = {
    "redirected": ("reason", "department"),
    "assigned": ("department", "co_departments"),
    "returned": ("reason",),
    "replied": ("note",),
    "extended": ("reason", "days"),
    "note": ("note",),
    "instructed": ("note",),
    "adopted": ("outcome", "reason"),
}
STATUS_STEPS = frozenset(ORDER) - {"note", "extended", "instructed", "adopted"}


def offered_steps(staff: Staff, case: Case) -> list[str]:
    """The steps to show as buttons: legal from the case's status and allowed to this person."""
    return [
        step
        for step in ORDER
        if case.status in TRANSITIONS[step]
        and may_take(staff, step)
        and not (step == "extended" and case.extended_days)
        # Only a suggestion has an outcome (采纳 / 部分采纳 / 未采纳), decided once.
        and not (step == "adopted" and (kind_of(case.kind).timed or case.outcome))
    ]


def read_fields(form: Any, step: str) -> tuple[dict[str, Any], tuple[str, dict[str, Any]] | None]:
    """The step's words from the form, and what is wrong with them (a catalog key and values)."""
    values: dict[str, Any] = {}
    for name in FIELDS.get(step, ()):
        if name == "co_departments":
            values[name] = [str(v).strip() for v in form.getall(name, []) if str(v).strip()]
            continue
        raw = str(form.get(name, "")).strip()
        if name == "outcome":
            if raw not in OUTCOMES:
                return values, ("desk.invalid.outcome", {})
            values[name] = raw
            continue
        if name == "days":
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_EXTENSION_DAYS:
                return values, ("desk.invalid.days", {})
            values["days"] = int(raw)
            continue
        values[name] = raw
        label = _label(step, name)
        if name in REQUIRED.get(step, ()) and not raw:
            return values, ("desk.invalid", {"field": label})
        if len(raw) > LIMITS[name]:
            return values, ("desk.invalid.long", {"field": label, "max": LIMITS[name]})
    return values, None


def _label(step: str, name: str) -> str:
    if step == "redirected" and name == "department":
        return "desk.field.where"
    if step == "replied" and name == "note":
        return "desk.field.answer"
    if step == "instructed" and name == "note":
        return "desk.field.instruction"
    return f"desk.field.{name}"
