"""What the engine needs from storage and the rest of the system, as Protocols.

Storage implements these; the engine never sees SQL or Redis. A turn runs inside one unit of
work: state, case rows, timeline, outbox and the dedupe record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .cases.repeats import RepeatRules
from .commands import Command, Results
from .messages import Inbound, Reply
from .state import ConversationState


class Conflict(Exception):
    """Another turn changed the same conversation (or a case code collided): run the turn again."""


class Forgotten(list[Reply]):
    """What `recall` gives for a message handled before whose replies are no longer kept.

    A message is marked handled for the whole dedupe window (a day), so it is never handled
    twice; the replies themselves are kept only for the re-delivery window (minutes: WeChat's
    retries, a Telegram or SMS re-push), after which its re-delivery is told, in the catalog's
    words, that it was taken already. Empty: a caller that only passes replies on sends nothing.
    """


@dataclass(frozen=True)
class Deadline:
    """A time limit on a case: what is due (`accept`, `finish`, `review`, a stage) and by when."""

    kind: str
    due_at: datetime
    label: str = ""


@dataclass(frozen=True)
class CaseStep:
    """One step of a case as its citizen may read it, with what its sentence needs.

    `type` is the timeline's event type (accepted, assigned, replied, extended, rated …); the
    other fields are what that step said: the department, the reply, the reason given, the
    rating (its score on its scale, and the label recorded), the days of an extension.
    """

    at: datetime
    type: str
    department: str = ""
    note: str = ""
    reason: str = ""
    rating: str = ""
    score: int | None = None
    scale: int | None = None
    days: int | None = None
    outcome: str = ""  # a suggestion's: adopted, partly, not_adopted


@dataclass(frozen=True)
class CaseView:
    """What a citizen may see of their own case."""

    code: str
    kind: str
    category: str
    status: str
    created_at: datetime
    updated_at: datetime
    next_deadline: Deadline | None = None
    review_until: datetime | None = None  # the last moment to ask for a review (复查)
    history: tuple[CaseStep, ...] = field(default=())  # oldest first


@dataclass(frozen=True)
class SimilarCase:
    """The asker's own open matter that reads like the one being filed (重复信访), asked about
    before a new case is made of it."""

    code: str
    description: str
    created_at: datetime
    score: float


class Lookups(Protocol):
    """Read-only questions a flow may ask; every answer is scoped to one channel identity."""

    async def cases_of(self, channel: str, sender: str, limit: int = 5) -> list[CaseView]: ...

    async def case_of(self, channel: str, sender: str, code: str) -> CaseView | None: ...

    async def ratable_cases(self, channel: str, sender: str) -> list[CaseView]: ...

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
        """The asker's own case still being worked on (the ones they may add to) of this kind
        and category, filed within the rules' window, that reads like `description` by the
        repeat watch's threshold; the most similar, or None."""
        ...


class Turn(Protocol):
    """One unit of work for one conversational turn."""

    @property
    def lookups(self) -> Lookups: ...

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        """Replies already given to this message, seen from inside the turn's transaction;
        `Forgotten` once they are past the re-delivery window, None for a message not seen."""
        ...

    async def load_state(self, key: str) -> ConversationState | None: ...

    async def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results: ...

    async def save_state(self, key: str, state: ConversationState) -> None: ...

    async def remember(self, dedupe_key: str, replies: Sequence[Reply]) -> None: ...

    async def commit(self) -> None: ...


class ConversationStore(Protocol):
    """Per-conversation locks, re-delivery memory and units of work."""

    def lock(self, key: str, dedupe_key: str = "") -> AbstractAsyncContextManager[None]:
        """Hold the conversation; `dedupe_key` lets a store read ahead what recall will ask."""
        ...

    async def recall(self, dedupe_key: str) -> list[Reply] | None: ...

    def turn(self) -> AbstractAsyncContextManager[Turn]: ...


class DeadlinePolicy(Protocol):
    """The legal time limits (`conversation.cases.deadlines.LegalDeadlines`, with the office's
    calendar)."""

    def acceptance_due(self, submitted_at: datetime) -> datetime: ...

    def review_decision_due(self, requested_at: datetime) -> datetime: ...
