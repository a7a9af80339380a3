"""A real Engine on the in-memory store, for tests of the conversation rather than of storage.

The store contract (test_store_contract.py) holds the memory store to the real ones; storage
itself is tested there, in test_storage.py and in the HTTP and channel tests on real backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conversation.cases.deadlines import LegalDeadlines
from conversation.engine import Engine
from conversation.office import load_office
from storage.memory import MemoryConversationStore
from storage.memory_cases import CaseRecord

from .conftest import Citizen
from .store_backends import TZ, MemoryBackend

OFFICE = load_office()  # the bundled office file, read once: the engine never changes it


@dataclass
class OnMemory:
    """The engine a citizen talks to, and the back office's side of its store."""

    backend: MemoryBackend = field(default_factory=MemoryBackend)

    def __post_init__(self) -> None:
        deadlines = LegalDeadlines(TZ, OFFICE.deadlines)
        self.engine = Engine(self.store, OFFICE, deadlines, tz=TZ)

    @property
    def store(self) -> MemoryConversationStore:
        return self.backend.store

    def citizen(self, sender: str = "citizen-1", channel: str = "webchat") -> Citizen:
        return Citizen(self.engine, sender=sender, channel=channel)

    def sent_types(self) -> list[str]:
        """The types of what the back office was sent, in order (the outbox's, on a database)."""
        return [entry.type for entry in self.store.cases.published]

    def only_case(self) -> CaseRecord:
        cases = list(self.store.cases.records.values())
        assert len(cases) == 1
        return cases[0]
