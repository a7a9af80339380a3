"""The statuses a case passes through and the one table that says which step may follow which.

submitted → accepted (受理) or redirected (不予受理 / 转法定途径, 诉访分离); accepted → assigned
(交办) ⇄ returned (退回); → replied (答复) → closed (办结) → rated (评价); review_requested (复查)
reopens a replied, closed or rated case while the review window is open. `extended` (延期) and
`note` change no status, nor do a leader's 批示 (`instructed`) and a suggestion's outcome
(`adopted`: 采纳 / 部分采纳 / 未采纳). No status is ever set without this table.
"""

from __future__ import annotations

from datetime import datetime

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
# Where the office's work on a case has ended (Open311's `closed`): not accepted, 办结, rated.
# A review request reopens a case, so `review_requested` is not among them.
FINISHED = ("redirected", "closed", "rated")
# The steps the back office reports (POST /api/v1/cases/{code}/events) …
BACKOFFICE_EVENTS = (
    "accepted",
    "redirected",
    "assigned",
    "returned",
    "replied",
    "closed",
    "extended",
    "note",
    "instructed",
    "adopted",
)
# … and the citizen's own (a rating, a request for review), by chat or SMS.
CITIZEN_EVENTS = ("rated", "review_requested")

# Steps beside the path, which never move a case: notes, 批示, a suggestion's outcome.
ASIDES = ("note", "instructed", "adopted")

# event → {status it may follow: status it leads to}
TRANSITIONS: dict[str, dict[str, str]] = {
    "accepted": {"submitted": "accepted", "review_requested": "accepted"},
    "redirected": {"submitted": "redirected"},
    "assigned": {"accepted": "assigned", "returned": "assigned", "review_requested": "assigned"},
    "returned": {"assigned": "returned"},
    "replied": {"accepted": "replied", "assigned": "replied", "review_requested": "replied"},
    "closed": {"replied": "closed"},
    "extended": {s: s for s in ("accepted", "assigned", "returned", "review_requested")},
    "note": {s: s for s in STATUSES},
    "instructed": {s: s for s in STATUSES},
    "adopted": {s: s for s in ("submitted", "accepted", "assigned", "returned", "replied")},
    "rated": {"closed": "rated"},
    "review_requested": {s: "review_requested" for s in ("replied", "closed", "rated")},
}


class IllegalTransition(Exception):
    """`event` may not follow `status`; the message says what may."""

    def __init__(self, status: str, event: str, reason: str = "") -> None:
        self.status, self.event = status, event
        super().__init__(
            reason or f"The case is {status}; '{event}' cannot follow. {_next(status)}"
        )


class ReviewWindowClosed(IllegalTransition):
    """A review (复查) asked for after the window the law gives (30 days after the reply)."""

    def __init__(self, status: str, until: datetime) -> None:
        self.until = until
        super().__init__(
            status, "review_requested", f"The time to ask for a review ended at {until}."
        )


def next_status(
    status: str, event: str, *, review_until: datetime | None = None, now: datetime | None = None
) -> str:
    """The status `event` leads to from `status`, or `IllegalTransition`.

    A review needs its window open as well: the case's `review_until` on or after `now`."""
    following = TRANSITIONS.get(event, {}).get(status)
    if following is None:
        raise IllegalTransition(status, event)
    if event == "review_requested":
        if review_until is None or now is None:
            raise IllegalTransition(status, event, "No review window is open on this case.")
        if now > review_until:
            raise ReviewWindowClosed(status, review_until)
    return following


def _next(status: str) -> str:
    allowed = sorted(e for e, moves in TRANSITIONS.items() if status in moves and e not in ASIDES)
    return f"Possible next: {', '.join(allowed)}." if allowed else "Only notes may follow."
