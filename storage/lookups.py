"""Read-only answers for the conversation, always scoped to the asking channel identity."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from conversation.ports import CaseView, Deadline

from .documents import DueDates, next_deadline
from .uow import UnitOfWork

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
    }
)
RATABLE = ("closed",)


class CaseFacts(DueDates, Protocol):
    """What a citizen's view of a case is made of: a `Case` row, or the in-memory record."""

    @property
    def code(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class Happening(Protocol):
    """One timeline entry: a `CaseEvent` row, or the in-memory store's entry."""

    @property
    def type(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...


class CaseLookups:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def cases_of(self, channel: str, sender: str, limit: int = 5) -> list[CaseView]:
        cases = await self.uow.cases.of_identity(channel, sender, limit=limit)
        return [case_view(case) for case in cases]

    async def case_of(self, channel: str, sender: str, code: str) -> CaseView | None:
        case = await self.uow.cases.owned(channel, sender, code)
        if case is None:
            return None
        return case_view(case, await self.uow.events.events(case))

    async def ratable_cases(self, channel: str, sender: str) -> list[CaseView]:
        cases = await self.uow.cases.of_identity(channel, sender, statuses=RATABLE, limit=10)
        return [case_view(case) for case in cases]


def case_view(case: CaseFacts, timeline: Iterable[Happening] = ()) -> CaseView:
    """The citizen's view; with the timeline, the history they may read (notes stay hidden)."""
    due = next_deadline(case)
    history = tuple(
        (e.at, e.type, str(e.data.get("note") or e.data.get("reason") or ""))
        for e in timeline
        if e.type in CITIZEN_VISIBLE
    )
    return CaseView(
        code=case.code,
        kind=case.kind,
        category=case.category,
        status=case.status,
        created_at=case.created_at,
        updated_at=case.updated_at,
        next_deadline=Deadline(due[0], due[1]) if due else None,
        review_until=case.review_due_at,
        history=history,
    )
