"""What the citizen is told of their case: the steps sent to them, the history they see."""

from __future__ import annotations

from .lifecycle import TRANSITIONS

# Steps the citizen hears about on their own channel as they happen.
CITIZEN_TOPICS = frozenset(
    {"accepted", "redirected", "replied", "closed", "extended", "instructed", "adopted"}
)
# Timeline entries a citizen sees in "办理经过"; internal ones (notes, deliveries) stay hidden.
CITIZEN_VISIBLE = frozenset(
    {
        "submitted",
        "accepted",
        "redirected",
        "assigned",
        "returned",
        "replied",
        "closed",
        "extended",
        "rated",
        "review_requested",
        "supplemented",
        "urged",
        # The case work's steps (issue 18) that concern the citizen.
        "instructed",
        "escalated",
        "adopted",
    }
)
# The statuses a citizen may rate from, as the table says.
RATABLE = tuple(TRANSITIONS["rated"])
# Where the office is still working: the citizen may urge it (催办) and add to it (补充).
URGEABLE = ("submitted", "accepted", "assigned", "returned", "review_requested")
# Answered or finished: words added now start a review (复查) while its window is open.
ANSWERED = tuple(TRANSITIONS["review_requested"])
