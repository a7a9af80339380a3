"""Cases kept in memory: the records, a turn's commands applied to them, and the lookups.

The twin of intake.py, ratings.py and lookups.py for tests that need no database. It keeps
what a flow can observe (codes, owners, statuses, deadlines, ratings, the citizen's history) and
what the back office would be sent, by type; tests/test_store_contract.py holds it to the real
stores' behaviour.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from conversation.cases.citizen import ANSWERED, RATABLE, URGEABLE
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.kinds import kind_of
from conversation.cases.lifecycle import IllegalTransition, ReviewWindowClosed
from conversation.cases.proof import new_query_code
from conversation.cases.repeats import RepeatRules, most_similar
from conversation.codes import new_case_code
from conversation.commands import (
    AddRatingComment,
    Command,
    ProveCase,
    RecordRating,
    RelayToStaff,
    RequestHandoff,
    RequestReview,
    Results,
    SendProofCode,
    SubmitCase,
    Supplement,
    Unsubscribe,
    Urge,
)
from conversation.messages import Inbound, Media
from conversation.ports import CaseView, Conflict, SimilarCase

from .follow import supplement_data
from .handoffs import exported
from .lifecycle import advance
from .lookups import case_view
from .memory_proof import ProofCodeRecord, prove, send_code
from .repeats import CANDIDATES


@dataclass(frozen=True)
class Entry:
    """One line of a case's timeline, or one event for the back office (`case` may be "")."""

    type: str
    case: str
    data: dict[str, Any]
    at: datetime


@dataclass
class CaseRecord:
    """One filed matter; the field names are those of `storage.models.Case`."""

    code: str
    origin: str
    kind: str
    description: str
    channel: str
    sender: str  # with `channel`, the identity that filed it: the only one that sees it
    created_at: datetime
    updated_at: datetime
    seq: int  # the filing order, as the row id orders cases filed in the same instant
    category: str = ""
    location_text: str = ""
    lat: float | None = None
    lng: float | None = None
    attachments: tuple[Media, ...] = ()
    name: str = ""
    phone: str = ""
    source: str = ""
    language: str = "zh"
    answers: dict[str, Any] = field(default_factory=dict)
    risk_words: tuple[str, ...] = ()
    status: str = "submitted"
    department: str = ""
    mailbox: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)
    extended_days: int = 0
    accept_due_at: datetime | None = None
    finish_due_at: datetime | None = None
    review_due_at: datetime | None = None
    rating_score: int | None = None
    rating_scale: int | None = None
    rating_label: str | None = None
    rating_comment: str | None = None
    rating_channel: str | None = None
    rated_at: datetime | None = None
    anonymous: bool = False
    query_code_hash: str | None = None
    timeline: tuple[Entry, ...] = ()
    version: int = 0


class MemoryCases:
    """The committed cases, what the back office was sent, and who left their channel."""

    def __init__(self) -> None:
        self.records: dict[str, CaseRecord] = {}
        self.published: list[Entry] = []
        self.unsubscribed: dict[tuple[str, str], datetime] = {}
        self.numbers = itertools.count(1)
        # Proof of identity (storage/proof.py's tables): 验证码, failures, granted cases, and
        # the phone each chat proved it holds.
        self.proof_codes: dict[int, ProofCodeRecord] = {}
        self.proof_failures: list[tuple[tuple[str, str], str, datetime]] = []
        self.access: set[tuple[str, str, str]] = set()
        self.proven: dict[tuple[str, str], str] = {}
        self.linked: dict[tuple[str, str], str] = {}  # the phone a chat typed in, proven or not
        self.hash_key = secrets.token_bytes(32)

    def check(self, changes: CaseChanges) -> None:
        """Refuse a turn whose cases another turn changed meanwhile (the row lock's job)."""
        origins = {case.origin for case in self.records.values()}
        for code, case in changes.changed.items():
            read = changes.read.get(code)
            current = self.records.get(code)
            if read is None and (current is not None or case.origin in origins):
                raise Conflict(f"case {code} or its form was filed by another turn")
            if read is not None and (current is None or current.version != read):
                raise Conflict(f"case {code} changed under this turn")

    def apply(self, changes: CaseChanges) -> None:
        for code, case in changes.changed.items():
            self.records[code] = replace(case, version=case.version + 1)
        self.published += changes.published
        self.unsubscribed.update(changes.unsubscribed)
        self.proof_codes.update(changes.proof_codes)
        self.proof_failures += changes.proof_failures
        self.access |= changes.access
        for asker, phone in changes.linked.items():
            self.linked[asker] = phone
        for asker, proven in changes.proven.items():
            if proven:
                self.proven[asker] = proven
            else:
                self.proven.pop(asker, None)


class CaseChanges:
    """The cases as one turn sees them (the committed ones under its own changes): implements
    `conversation.ports.Lookups` and applies the turn's commands like `storage.intake`."""

    def __init__(
        self,
        cases: MemoryCases,
        deadlines: LegalDeadlines,
        clock: Callable[[], datetime],
    ) -> None:
        self.cases = cases
        self.deadlines = deadlines
        self.tz = deadlines.tz
        self.clock = clock
        self.changed: dict[str, CaseRecord] = {}
        self.read: dict[str, int] = {}  # the version each changed case had when this turn read it
        self.published: list[Entry] = []
        self.unsubscribed: dict[tuple[str, str], datetime] = {}
        self.proof_codes: dict[int, ProofCodeRecord] = {}
        self.proof_failures: list[tuple[tuple[str, str], str, datetime]] = []
        self.access: set[tuple[str, str, str]] = set()
        self.proven: dict[tuple[str, str], str] = {}  # "" drops a proof
        self.linked: dict[tuple[str, str], str] = {}

    # -- reading ----------------------------------------------------------------------------

    def _of(
        self, channel: str, sender: str, statuses: tuple[str, ...] = (), limit: int | None = 5
    ) -> list[CaseRecord]:
        merged = {**self.cases.records, **self.changed}.values()
        mine = [
            c
            for c in merged
            if self._mine(c, channel, sender) and (not statuses or c.status in statuses)
        ]
        return sorted(mine, key=lambda c: (c.created_at, c.seq), reverse=True)[:limit]

    def _owned(self, channel: str, sender: str, code: str) -> CaseRecord | None:
        case = self.changed.get(code) or self.cases.records.get(code)
        return case if case is not None and self._mine(case, channel, sender) else None

    def _mine(self, case: CaseRecord, channel: str, sender: str) -> bool:
        """As storage.cases._owned_by: filed here, a proven phone's, or granted by a proof."""
        asker = (channel, sender)
        proven = self.proven.get(asker, self.cases.proven.get(asker, ""))
        return (
            (case.channel, case.sender) == asker
            or bool(proven and case.phone == proven)
            or (channel, sender, case.code) in self.access | self.cases.access
        )

    def sms_codes(self) -> dict[int, ProofCodeRecord]:
        return {**self.cases.proof_codes, **self.proof_codes}

    async def cases_of(self, channel: str, sender: str, limit: int = 5) -> list[CaseView]:
        return [case_view(case) for case in self._of(channel, sender, limit=limit)]

    async def case_of(self, channel: str, sender: str, code: str) -> CaseView | None:
        case = self._owned(channel, sender, code)
        return case_view(case, case.timeline) if case is not None else None

    async def ratable_cases(self, channel: str, sender: str) -> list[CaseView]:
        return [case_view(case) for case in self._of(channel, sender, RATABLE, limit=10)]

    async def similar_open_case(
        self,
        channel: str,
        sender: str,
        kind: str,
        category: str,
        description: str,
        rules: RepeatRules,
        similarity: Callable[[str, str], float],
    ) -> SimilarCase | None:
        since = self.clock() - timedelta(days=rules.window_days)
        mine = self._of(channel, sender, URGEABLE, limit=None)
        fitting = [
            c for c in mine if c.kind == kind and c.category == category and c.created_at >= since
        ][:CANDIDATES]
        best = most_similar(fitting, description, rules, similarity)
        if best is None:
            return None
        case, score = best
        return SimilarCase(case.code, case.description, case.created_at, score)

    # -- writing ----------------------------------------------------------------------------

    def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results:
        results = Results()
        for command in commands:
            match command:
                case SubmitCase():
                    results = self._submit(command, inbound)
                case RequestHandoff():
                    self._handoff(command, inbound)
                case RecordRating():
                    results = results.with_value("rated", self._rate(command, inbound))
                case AddRatingComment():
                    self._comment(command, inbound)
                case RequestReview():
                    results = results.with_value("review", self._review(command, inbound))
                case RelayToStaff():
                    # No staff thread lives in this store: as the real one answers for a
                    # thread that ended or never was, the bot answers instead.
                    results = results.with_value("relayed", False)
                case Unsubscribe():
                    self.unsubscribed[(inbound.channel, inbound.sender)] = self.clock()
                case SendProofCode():
                    results = results.with_value("proof", send_code(self, command, inbound))
                case ProveCase():
                    results = results.with_value("proof", prove(self, command, inbound))
                case Supplement():
                    results = results.with_value("supplement", self._supplement(command, inbound))
                case Urge():
                    results = results.with_value("urge", self._urge(command, inbound))
        return results

    def _submit(self, command: SubmitCase, inbound: Inbound) -> Results:
        merged = {**self.cases.records, **self.changed}.values()
        existing = next((c for c in merged if c.origin == command.origin), None)
        if existing is not None:
            return _results(existing)  # the same form again: the same case
        now = self.clock()
        case = CaseRecord(
            code=new_case_code(now.astimezone(self.tz).date()),
            origin=command.origin,
            kind=command.kind,
            description=command.description,
            channel=inbound.channel,
            sender=inbound.sender,
            created_at=now,
            updated_at=now,
            seq=next(self.cases.numbers),
            category=command.category,
            location_text=command.location_text,
            lat=command.lat,
            lng=command.lng,
            attachments=command.attachments,
            name=command.name,
            phone=command.phone,
            source=command.source,
            language=command.language,
            answers=command.answers,
            risk_words=command.risk_words,
            department=command.department,
            mailbox=command.mailbox,
            # As storage/filing.py: a suggestion has no acceptance to decide within 15 days.
            accept_due_at=command.acceptance_due if kind_of(command.kind).timed else None,
            stages=self.deadlines.stages_from("submitted", now)
            if kind_of(command.kind).timed
            else [],
        )
        self.changed[case.code] = case
        facts = {"kind": case.kind, "category": case.category}
        self._record(case, "submitted", {**facts, "attachments": len(case.attachments)}, now)
        # The real event carries the whole case document; here the record itself is kept, and
        # of the document what routing decides (where it starts, which leader's mailbox).
        routing = {"department": case.department, "mailbox": case.mailbox}
        self._publish("case.submitted", case, {"code": case.code, **facts, **routing}, now)
        asker = (inbound.channel, inbound.sender)
        if command.phone and self.linked.get(asker, self.cases.linked.get(asker)) != command.phone:
            # As the real store: a typed number links the chat but proves nothing.
            self.linked[asker], self.proven[asker] = command.phone, ""
        if not command.anonymous:
            return _results(case)
        query = new_query_code()
        case.anonymous, case.query_code_hash = True, self.keyed(query, f"query-code:{case.code}")
        return _results(case).with_value("query_code", query)

    def keyed(self, value: str, purpose: str) -> str:
        return hmac.new(self.cases.hash_key, f"{purpose}\x00{value}".encode(), "sha256").hexdigest()

    def _handoff(self, command: RequestHandoff, inbound: Inbound) -> None:
        data = {
            "channel": inbound.channel,
            "sender": inbound.sender,
            "reason": command.reason,
            "summary": command.summary,
            "risk_words": list(command.risk_words),
        }
        if command.case_code:
            case = self._owned(inbound.channel, inbound.sender, command.case_code)
        else:  # as the real store: the latest matter on file is most likely the one meant
            latest = self._of(inbound.channel, inbound.sender, limit=1)
            case = latest[0] if latest else None
        now = self.clock()
        if case is not None:
            self._record(case, "handoff.requested", exported(data), now)
        self._publish("handoff.requested", case, exported(data), now)

    def _rate(self, command: RecordRating, inbound: Inbound) -> bool:
        case = self._owned(inbound.channel, inbound.sender, command.case_code)
        if case is None or case.status not in RATABLE:
            return False
        now = self.clock()
        case = self._writable(case)
        advance(case, "rated", now)
        case.rating_score, case.rating_scale = command.score, command.scale
        case.rating_label, case.rating_comment = command.label, command.comment
        case.rating_channel, case.rated_at = inbound.channel, now
        rating = {
            "score": command.score,
            "scale": command.scale,
            "label": command.label,
            "comment": command.comment,
            "channel": inbound.channel,
            "at": now.isoformat(),
        }
        self._record(case, "rated", rating, now)
        self._publish("case.rated", case, rating, now)
        return True

    def _comment(self, command: AddRatingComment, inbound: Inbound) -> None:
        case = self._owned(inbound.channel, inbound.sender, command.case_code)
        if case is None or case.rating_score is None:
            return
        now = self.clock()
        case = self._writable(case)
        case.rating_comment = command.comment
        self._record(case, "rating.commented", {"comment": command.comment}, now)
        data = {"status": case.status, "rating_comment": command.comment}
        self._publish("case.updated", case, data, now)

    def _review(self, command: RequestReview, inbound: Inbound) -> str:
        case = self._owned(inbound.channel, inbound.sender, command.case_code)
        if case is None:
            return "not_possible"
        now = self.clock()
        case = self._writable(case)
        try:
            advance(case, "review_requested", now)
        except ReviewWindowClosed:
            return "too_late"
        except IllegalTransition:
            return "not_possible"
        case.finish_due_at = command.decision_due
        data = {"decide_by": command.decision_due.isoformat(), "channel": inbound.channel}
        self._record(case, "review_requested", data, now)
        self._publish("case.review_requested", case, data, now)
        return "requested"

    def case(self, code: str) -> CaseRecord | None:
        """Any case by its code, as this turn sees it (for proof: not only the asker's own)."""
        return self.changed.get(code) or self.cases.records.get(code)

    def note(self, case: CaseRecord, type_: str, data: dict[str, Any], at: datetime) -> None:
        """A line on the case's timeline only (the back office is not sent it)."""
        self._record(case, type_, data, at)

    def _supplement(self, command: Supplement, inbound: Inbound) -> str:
        case = self._owned(inbound.channel, inbound.sender, command.case_code)
        if case is None:
            return "not_possible"
        outcome = "added"
        if case.status in ANSWERED:
            if command.review_decision_due is None:
                return "not_possible"
            review = RequestReview(command.case_code, command.review_decision_due)
            asked = self._review(review, inbound)
            if asked != "requested":
                return asked
            outcome = "review"
        elif case.status not in URGEABLE:
            return "not_possible"
        now = self.clock()
        case = self._writable(case)
        case.attachments += command.attachments
        data = supplement_data(command, inbound.channel)
        self._record(case, "supplemented", data, now)
        self._publish("case.updated", case, {"status": case.status, "supplemented": data}, now)
        return outcome

    def _urge(self, command: Urge, inbound: Inbound) -> tuple[str, datetime | int | None]:
        case = self._owned(inbound.channel, inbound.sender, command.case_code)
        if case is None or case.status not in URGEABLE:
            return "not_open", None
        now = self.clock()
        urges = [e.at for e in case.timeline if e.type == "urged"]
        if urges and now < max(urges) + command.every:
            return "too_soon", max(urges) + command.every
        count = len(urges) + 1
        self._record(case, "urged", {"channel": inbound.channel, "count": count}, now)
        self._publish("case.updated", case, {"status": case.status, "urged": count}, now)
        return "urged", count

    def _writable(self, case: CaseRecord) -> CaseRecord:
        """This turn's own copy of the case; the commit checks nobody changed it meanwhile."""
        if case.code not in self.changed:
            self.read[case.code] = case.version
            self.changed[case.code] = replace(case)
        return self.changed[case.code]

    def _record(self, case: CaseRecord, type_: str, data: dict[str, Any], at: datetime) -> None:
        case = self._writable(case)
        case.timeline += (Entry(type_, case.code, data, at),)

    def _publish(
        self, type_: str, case: CaseRecord | None, data: dict[str, Any], at: datetime
    ) -> None:
        self.published.append(Entry(type_, case.code if case else "", data, at))


def _results(case: CaseRecord) -> Results:
    return Results(case.code, case.created_at, {"acceptance_due": case.accept_due_at})
