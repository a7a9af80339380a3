"""A step the back office reports (the body of POST /api/v1/cases/{code}/events), checked.

Each step says what the citizen will be told: a redirection says why and where to go, an
assignment names the department, a reply carries the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .deadlines import MAX_EXTENSION_DAYS
from .lifecycle import BACKOFFICE_EVENTS

# What the back office must say for each step (and why): the citizen is told it.
REQUIRED: dict[str, tuple[str, ...]] = {
    "redirected": ("reason", "department"),  # why not accepted, and where to go instead
    "assigned": ("department",),
    "returned": ("reason",),
    "replied": ("note",),  # the answer itself
    "extended": ("reason",),
    "note": ("note",),
    "instructed": ("note",),  # the leader's words
    "adopted": ("outcome", "reason"),
}
LIMITS = {
    "note": 5000,
    "reason": 1000,
    "department": 100,
    "staff": 100,
    "stage": 40,
    "outcome": 20,
}
# A suggestion's outcome: 采纳, 部分采纳, 未采纳.
OUTCOMES = ("adopted", "partly", "not_adopted")
MAX_CO_DEPARTMENTS = 10


class InvalidProgress(ValueError):
    """The request body is wrong; the message says what to send instead."""


@dataclass(frozen=True)
class Progress:
    """One step reported by the back office; `stage` marks a local stage as met."""

    type: str
    note: str = ""
    department: str = ""
    staff: str = ""
    reason: str = ""
    days: int = MAX_EXTENSION_DAYS
    stage: str = ""
    outcome: str = ""
    co_departments: tuple[str, ...] = ()  # 协办, beside the lead `department` of an assignment

    @classmethod
    def from_json(cls, body: Any) -> Progress:
        if not isinstance(body, dict):
            raise InvalidProgress("The body must be a JSON object with at least a 'type'.")
        unknown = set(body) - {*LIMITS, "type", "days", "co_departments"}
        if unknown:
            raise InvalidProgress(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        kind = body.get("type")
        if kind not in BACKOFFICE_EVENTS:
            raise InvalidProgress(f"'type' must be one of: {', '.join(BACKOFFICE_EVENTS)}.")
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
        if values["outcome"] and (kind != "adopted" or values["outcome"] not in OUTCOMES):
            raise InvalidProgress(
                f"'outcome' belongs to an 'adopted' event and is one of: {', '.join(OUTCOMES)}."
            )
        if "co_departments" in body:
            values["co_departments"] = _co_departments(kind, body["co_departments"])
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
        if self.outcome:
            data["outcome"] = self.outcome
        if self.co_departments:
            data["co_departments"] = list(self.co_departments)
        return data


def _co_departments(kind: str, value: Any) -> tuple[str, ...]:
    if kind != "assigned":
        raise InvalidProgress("'co_departments' belongs to an 'assigned' event only.")
    if (
        not isinstance(value, list)
        or len(value) > MAX_CO_DEPARTMENTS
        or not all(isinstance(v, str) and 0 < len(v.strip()) <= LIMITS["department"] for v in value)
    ):
        raise InvalidProgress(
            f"'co_departments' must be a list of at most {MAX_CO_DEPARTMENTS} department codes."
        )
    return tuple(dict.fromkeys(v.strip() for v in value))
