"""Write commands a flow asks for; the engine applies them in the turn's one unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    # No name, no mobile: the receipt gives a 查询码 (result `query_code`), kept only hashed.
    anonymous: bool = False


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
    # Photos sent in the thread: kept with the thread's case, linked from the words.
    photos: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Unsubscribe:
    """The citizen left the channel (e.g. WeChat `unsubscribe`): stop every push to them."""


@dataclass(frozen=True)
class SendProofCode:
    """Text a 验证码 to the mobile on file of `case_code`, for the asker to prove they hold it.
    The result `proof` is a `conversation.cases.proof.ProofAnswer` (sent, no_phone, throttled)."""

    case_code: str


@dataclass(frozen=True)
class ProveCase:
    """The asker answers with a 查询码 (`how` = "query") or the 验证码 texted ("sms"). On
    success the case (and, by SMS, every case of its citizen) opens to this chat for good;
    the result `proof` carries the answer and, when passed, the case as the citizen sees it."""

    case_code: str
    how: str
    secret: str


@dataclass(frozen=True)
class Supplement:
    """补充: the citizen adds words, photos or a place to their own case; staff are told. On a
    finished case within the review window it also asks for a review (复查) decided by
    `review_decision_due`. The result `supplement` is "added", "review", "too_late" or
    "not_possible"."""

    case_code: str
    text: str = ""
    attachments: tuple[Media, ...] = ()
    location_text: str = ""
    lat: float | None = None
    lng: float | None = None
    review_decision_due: datetime | None = None


@dataclass(frozen=True)
class Urge:
    """催办: the citizen urges their open case, at most once per `every`. The result `urge` is
    ("urged", n-th time), ("too_soon", next allowed moment) or ("not_open", None)."""

    case_code: str
    every: timedelta


Command = (
    SubmitCase
    | RequestHandoff
    | RecordRating
    | AddRatingComment
    | RequestReview
    | RelayToStaff
    | Unsubscribe
    | SendProofCode
    | ProveCase
    | Supplement
    | Urge
)


@dataclass(frozen=True)
class Results:
    """What applying the commands produced, for replies that need it (the new case code)."""

    case_code: str = ""
    case_created_at: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def with_value(self, name: str, value: Any) -> Results:
        return Results(self.case_code, self.case_created_at, {**self.values, name: value})
