"""The types every channel speaks: one Inbound in, typed Replies out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

InboundKind = Literal["text", "image", "video", "voice", "location", "event"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a matter happened: a WeChat location pin, browser coordinates, or both with a label."""

    lat: float
    lng: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class Media:
    """A photo, video or voice note as the channel knows it (WeChat MediaId, Telegram file_id, URL)."""

    kind: Literal["image", "video", "voice"]
    ref: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a citizen did, whatever the channel.

    `sender` is the channel-scoped id (WeChat openid, Telegram chat id, phone number, web-chat
    session); `message_id` is the channel's own id, used to recognise re-deliveries (empty when
    the channel has none, and then no deduplication happens).
    """

    channel: str
    sender: str
    kind: InboundKind = "text"
    text: str = ""
    message_id: str = ""
    media: tuple[Media, ...] = ()
    location: Location | None = None
    event: str = ""
    event_key: str = ""
    language: str = ""
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def conversation_key(self) -> str:
        return f"{self.channel}:{self.sender}"


@dataclass(frozen=True, slots=True)
class Choice:
    """An option the citizen can pick by sending `key` (or tapping it where the channel can)."""

    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message back to the citizen. Channels without buttons render choices as numbered lines."""

    text: str
    choices: tuple[Choice, ...] = ()

    def as_plain_text(self) -> str:
        """The reply with its choices as numbered lines, for WeChat, SMS and terminals."""
        if not self.choices:
            return self.text
        lines = [f"{c.key} {c.label}" for c in self.choices]
        return "\n".join([self.text, *lines]) if self.text else "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [{"key": c.key, "label": c.label} for c in self.choices],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=str(data.get("text", "")),
            choices=tuple(Choice(str(c["key"]), str(c["label"])) for c in data.get("choices", ())),
        )
