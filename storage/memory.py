"""The conversation store in process memory: the real stores' twin, for tests without a database.

It implements `conversation.ports.ConversationStore` the way the database store does: one lock
per conversation, state and re-delivery memory that expire, a version per conversation that
turns a stale write into `Conflict`, and the turn's commands applied to in-memory case records
(storage/memory_cases.py). A turn changes nothing until it commits, and then all at once.
State and replies are kept as JSON, as the real stores keep them, so what cannot be stored
there fails here too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from conversation.cases.deadlines import LegalDeadlines
from conversation.commands import Command, Results
from conversation.messages import Inbound, Reply
from conversation.ports import Conflict, Forgotten, Lookups
from conversation.state import ConversationState

from .locks import LocalLocks
from .memory_cases import CaseChanges, MemoryCases
from .models import utcnow


@dataclass(frozen=True)
class _Kept:
    """A conversation's state or a message's replies, as JSON, until `expires_at`."""

    json: str
    version: int
    expires_at: datetime


class MemoryConversationStore:
    """Everything in this process: for tests, never for an office (nothing survives a restart)."""

    def __init__(
        self,
        tz: tzinfo,
        *,
        lifetime: timedelta = timedelta(hours=24),
        dedupe_ttl: timedelta = timedelta(hours=24),
        redelivery: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utcnow,
        deadlines: LegalDeadlines | None = None,
    ) -> None:
        self.tz = tz
        # Filing sets a case's first deadlines with these (the office's stages from filing).
        self.deadlines = deadlines or LegalDeadlines(tz)
        self.lifetime = lifetime
        self.dedupe_ttl = dedupe_ttl
        self.redelivery = min(redelivery, dedupe_ttl)  # as storage/conversations.py
        self.clock = clock
        self.cases = MemoryCases()
        self._states: dict[str, _Kept] = {}
        self._seen: dict[str, _Kept] = {}  # that a message was handled, for the dedupe window
        self._replies: dict[str, _Kept] = {}  # what it was answered, for the re-delivery window
        self._locks = LocalLocks()

    def lock(self, key: str, dedupe_key: str = "") -> AbstractAsyncContextManager[None]:
        return self._locks.hold(key)

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        if self._live(self._seen.get(dedupe_key)) is None:
            return None
        kept = self._live(self._replies.get(dedupe_key))
        if kept is None:
            self._replies.pop(dedupe_key, None)
            return Forgotten()
        return [Reply.from_json(item) for item in json.loads(kept.json)]

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[MemoryTurn]:
        yield MemoryTurn(self)  # what it did not commit is simply dropped with it

    def _live(self, kept: _Kept | None) -> _Kept | None:
        return kept if kept is not None and kept.expires_at > self.clock() else None

    def _commit(self, turn: MemoryTurn) -> None:
        # Everything is checked before anything is written, and nothing awaits in between:
        # no other turn ever sees half of this one.
        for key in turn.states:
            if self._version(key) != turn.versions.get(key, 0):
                raise Conflict(f"conversation {key} changed under this turn")
        for dedupe_key in turn.seen:
            if self._live(self._seen.get(dedupe_key)) is not None:
                raise Conflict(f"message {dedupe_key} was answered by another turn")
        self.cases.check(turn.changes)
        self.cases.apply(turn.changes)
        now = self.clock()
        for key, state in turn.states.items():
            self._states[key] = _Kept(state, self._version(key) + 1, now + self.lifetime)
        for dedupe_key, replies in turn.seen.items():
            self._seen[dedupe_key] = _Kept("", 0, now + self.dedupe_ttl)
            self._replies[dedupe_key] = _Kept(replies, 0, now + self.redelivery)

    def _version(self, key: str) -> int:
        kept = self._states.get(key)  # an expired state keeps its version, as the row does
        return kept.version if kept is not None else 0


class MemoryTurn:
    """One turn's unit of work: implements `conversation.ports.Turn`."""

    def __init__(self, store: MemoryConversationStore) -> None:
        self.store = store
        self.changes = CaseChanges(store.cases, store.deadlines, store.clock)
        self.versions: dict[str, int] = {}  # the version of each state this turn loaded
        self.states: dict[str, str] = {}
        self.seen: dict[str, str] = {}

    @property
    def lookups(self) -> Lookups:
        return self.changes

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        return await self.store.recall(dedupe_key)

    async def load_state(self, key: str) -> ConversationState | None:
        self.versions[key] = self.store._version(key)
        kept = self.store._live(self.store._states.get(key))
        if kept is None:
            return None
        return ConversationState.from_json(json.loads(kept.json), kept.version)

    async def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results:
        return self.changes.apply(commands, inbound)

    async def save_state(self, key: str, state: ConversationState) -> None:
        self.states[key] = json.dumps(state.to_json(), ensure_ascii=False)

    async def remember(self, dedupe_key: str, replies: Sequence[Reply]) -> None:
        self.seen[dedupe_key] = json.dumps([r.to_json() for r in replies], ensure_ascii=False)

    async def commit(self) -> None:
        self.store._commit(self)
