"""Which deadlines are open on a case, from its kind, status and due times — and which is next.

The deadline watch warns about the office's open deadlines; the API's `deadlines.next` and the
citizen's status show the next legal one. Both ask `open_deadlines`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .deadlines import ACCEPTANCE_DAYS, FINISH_DAYS, REVIEW_DECISION_DAYS, REVIEW_REQUEST_DAYS
from .kinds import kind_of

# Being handled: the 60 days (and any extension) run.
HANDLING = ("accepted", "assigned", "returned")
# The statuses in which the office owes something: a legal limit and any unmet stages. The
# reply (or a redirection) ends the stages.
OWING = ("submitted", *HANDLING, "review_requested")


@dataclass(frozen=True)
class Due:
    """One deadline a case is under now: what, by when, and how long the limit is in all."""

    kind: str  # accept, finish, review_decision, review (the citizen's), stage:<name>
    due_at: datetime
    span: timedelta | None = None  # from the start of the limit to `due_at`, when known
    office: bool = True  # the office owes it; False: the citizen's window to ask for a review

    @property
    def is_stage(self) -> bool:
        return self.kind.startswith("stage:")


def open_deadlines(
    *,
    kind: str,
    status: str,
    accept_by: datetime | None,
    finish_by: datetime | None,
    review_by: datetime | None,
    extended_days: int = 0,
    stages: Sequence[Mapping[str, Any]] = (),
) -> list[Due]:
    """The legal limit the case is under by its status (if any) first, then its unmet stages.

    A suggestion is under none: it has its own path, without the petition's limits."""
    if not kind_of(kind).timed:
        return []
    dues: list[Due] = []
    if status == "submitted" and accept_by:
        dues.append(Due("accept", accept_by, timedelta(days=ACCEPTANCE_DAYS)))
    elif status in HANDLING and finish_by:
        dues.append(Due("finish", finish_by, timedelta(days=FINISH_DAYS + extended_days)))
    elif status == "review_requested" and finish_by:
        dues.append(Due("review_decision", finish_by, timedelta(days=REVIEW_DECISION_DAYS)))
    elif status == "replied" and review_by:
        dues.append(Due("review", review_by, timedelta(days=REVIEW_REQUEST_DAYS), office=False))
    if status in OWING:
        dues += [_stage(stage) for stage in stages if not stage.get("met_at")]
    return dues


def next_deadline(dues: Iterable[Due]) -> Due | None:
    """What the case shows as due next: its legal limit (stages are the office's own)."""
    return next((due for due in dues if not due.is_stage), None)


def _stage(stage: Mapping[str, Any]) -> Due:
    due_at = datetime.fromisoformat(stage["due_at"])
    started = stage.get("started_at")  # stages stored before starts were recorded have none
    span = due_at - datetime.fromisoformat(started) if started else None
    return Due(f"stage:{stage['name']}", due_at, span)
