"""Read-only answers for the conversation, always scoped to the asking channel identity."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from conversation.cases.citizen import CITIZEN_VISIBLE, RATABLE, URGEABLE
from conversation.cases.due import next_deadline
from conversation.cases.kinds import SURVEYED_KINDS
from conversation.cases.repeats import RepeatRules, most_similar
from conversation.ports import CaseStep, CaseView, Deadline, SimilarCase

from .documents import DueFacts, deadlines_of
from .models import utcnow
from .repeats import CANDIDATES
from .uow import Reading, UnitOfWork


class CaseLookups:
    """Over a turn's unit of work, or over a `Reading` when the turn has none open."""

    def __init__(self, uow: UnitOfWork | Reading) -> None:
        self.uow = uow

    async def cases_of(self, channel: str, sender: str, limit: int = 5) -> list[CaseView]:
        cases = await self.uow.cases.of_identity(channel, sender, limit=limit)
        return [case_view(case) for case in cases]

    async def case_of(self, channel: str, sender: str, code: str) -> CaseView | None:
        case = await self.uow.cases.owned(channel, sender, code)
        if case is None:
            return None
        return case_view(case, await self.uow.cases.history(case.id))

    async def ratable_cases(self, channel: str, sender: str) -> list[CaseView]:
        cases = await self.uow.cases.of_identity(
            channel, sender, statuses=RATABLE, kinds=SURVEYED_KINDS, limit=10
        )
        return [case_view(case) for case in cases]

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
        # The asker's own (as `case_of` sees them), so the quote and the 补充 are theirs to see.
        cases = await self.uow.cases.of_identity(
            channel,
            sender,
            statuses=URGEABLE,
            kinds=(kind,),
            category=category,
            since=utcnow() - timedelta(days=rules.window_days),
            limit=CANDIDATES,
        )
        best = most_similar(cases, description, rules, similarity)
        if best is None:
            return None
        case, score = best
        return SimilarCase(case.code, case.description, case.created_at, score)


class CaseFacts(DueFacts, Protocol):
    """What a citizen's view of a case is made of: a `CaseRow`, a `Case`, or the in-memory
    record."""

    @property
    def code(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class Happening(Protocol):
    """One timeline entry: an `EventRow`, a `CaseEvent`, or the in-memory store's entry."""

    @property
    def type(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...


def case_view(case: CaseFacts, timeline: Iterable[Happening] = ()) -> CaseView:
    """The citizen's view; with the timeline, the history they may read (notes stay hidden)."""
    due = next_deadline(deadlines_of(case))
    return CaseView(
        code=case.code,
        kind=case.kind,
        category=case.category,
        status=case.status,
        created_at=case.created_at,
        updated_at=case.updated_at,
        next_deadline=Deadline(due.kind, due.due_at) if due else None,
        review_until=case.review_due_at,
        history=tuple(_step(e) for e in timeline if e.type in CITIZEN_VISIBLE),
    )


def _step(event: Happening) -> CaseStep:
    data: dict[str, Any] = event.data or {}
    return CaseStep(
        at=event.at,
        type=event.type,
        department=str(data.get("department") or ""),
        note=str(data.get("note") or ""),
        reason=str(data.get("reason") or ""),
        rating=str(data.get("label") or ""),
        score=_number(data.get("score")),
        scale=_number(data.get("scale")),
        days=_number(data.get("days")),
        outcome=str(data.get("outcome") or ""),
    )


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
