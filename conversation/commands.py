"""Write commands a flow asks for; the engine applies them in the turn's one unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .messages import Media


@dataclass(frozen=True)
class SubmitCase:
    """File a matter. `origin` (channel, sender, message id) makes a repeated submit harmless."""

    origin: str
    kind: str
    description: str
    category: str = ""
    location_text: str = ""
    lat: float | None = None
    lng: float | None = None
    attachments: tuple[Media, ...] = ()
    name: str = ""
    phone: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    language: str = "zh"
    risk_words: tuple[str, ...] = ()
    acceptance_due: datetime | None = None
    # Where it starts: the office's routing (a suggestion the desk may change), by code.
    department: str = ""
    mailbox: str = ""  # the leader's mailbox (领导信箱) a letter is written to


@dataclass(frozen=True)
class RequestHandoff:
    """A citizen asked for a person; staff are told through the outbox (`handoff.requested`)."""

    reason: str
    summary: str = ""
    case_code: str = ""
    risk_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordRating:
    """The citizen's satisfaction with a closed matter."""

    case_code: str
    score: int
    label: str
    scale: int
    unhappy: bool = False
    comment: str = ""


@dataclass(frozen=True)
class AddRatingComment:
    """Words a citizen adds after rating: the reason for an unhappy rating, or a thank-you."""

    case_code: str
    comment: str


@dataclass(frozen=True)
class RequestReview:
    """The citizen asks for a review (复查) of the answer; the office decides by `decision_due`."""

    case_code: str
    decision_due: datetime


@dataclass(frozen=True)
class RelayToStaff:
    """A staff member has the conversation: the citizen's words go to them (and the timeline).
    The result `relayed` is False when the thread has ended meanwhile."""

    thread: int
    text: str


@dataclass(frozen=True)
class Unsubscribe:
    """The citizen left the channel (e.g. WeChat `unsubscribe`): stop every push to them."""


Command = (
    SubmitCase
    | RequestHandoff
    | RecordRating
    | AddRatingComment
    | RequestReview
    | RelayToStaff
    | Unsubscribe
)


@dataclass(frozen=True)
class Results:
    """What applying the commands produced, for replies that need it (the new case code)."""

    case_code: str = ""
    case_created_at: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def with_value(self, name: str, value: Any) -> Results:
        return Results(self.case_code, self.case_created_at, {**self.values, name: value})
