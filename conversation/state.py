"""A conversation's durable state: which flow and step it is in, and the answers so far."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class ConversationState:
    """Plain data, stored as JSON between turns (Redis or the `conversations` table).

    `flow` is empty at the main menu. `draft` holds a form set aside by `菜单`, `人工` or a long
    silence, so it can be offered back instead of being lost. `said` is the last thing the
    citizen wrote about their matter (bounded), for staff when a person is asked for.
    """

    flow: str = ""
    step: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    draft: dict[str, Any] | None = None
    language: str = "zh"
    source: str = ""
    said: str = ""
    risk_alerted: bool = False
    # A staff member has this conversation (the staff thread's id): the citizen's messages go
    # to them, not to the flows, until they hand it back.
    staff_thread: int | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: int = 0

    def enter(self, flow: str, step: str = "", data: dict[str, Any] | None = None) -> None:
        self.flow, self.step, self.data = flow, step, dict(data or {})

    def to_menu(self) -> None:
        self.enter("")

    def set_aside(self, forms: Container[str]) -> None:
        """Leave the current flow for the menu; a form (one of `forms`) is kept as the draft."""
        if self.flow in forms:
            self.draft = {"flow": self.flow, "step": self.step, "data": self.data}
        self.to_menu()

    def to_json(self) -> dict[str, Any]:
        # Written out by hand: dataclasses.asdict deep-copies, and this runs on every turn.
        return {
            "flow": self.flow,
            "step": self.step,
            "data": self.data,
            "draft": self.draft,
            "language": self.language,
            "source": self.source,
            "said": self.said,
            "risk_alerted": self.risk_alerted,
            "staff_thread": self.staff_thread,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], version: int = 0) -> ConversationState:
        return cls(
            flow=data.get("flow", ""),
            step=data.get("step", ""),
            data=dict(data.get("data") or {}),
            draft=data.get("draft"),
            language=data.get("language", "zh"),
            source=data.get("source", ""),
            said=data.get("said", ""),
            risk_alerted=bool(data.get("risk_alerted", False)),
            staff_thread=data.get("staff_thread"),
            updated_at=datetime.fromisoformat(data["updated_at"])
            if "updated_at" in data
            else datetime.now(UTC),
            version=version,
        )
