"""The types every channel speaks: one Inbound in, typed Replies out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

InboundKind = Literal["text", "image", "video", "voice", "location", "event"]

# What citizens' words may not carry into the case file: C0 controls but tab and newline (NUL
# among them, which PostgreSQL refuses in text), DEL and the C1 controls; the bidirectional
# embeddings, overrides and isolates that make "‮txt.exe" read backwards on the desk; and the
# zero-width characters that hide words from searches and risk-word checks. The zero-width
# joiner stays: emoji sequences (👨‍👩‍👧) are made with it.
_UNWANTED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u180e]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
INVALID_TEXT = (
    "The text contains invalid Unicode (a lone surrogate, which no real character is); "
    "send it again as ordinary text."
)


class InvalidText(ValueError):
    """Text that is not valid Unicode (a lone surrogate from a JSON `\\ud800` escape)."""

    def __init__(self) -> None:
        super().__init__(INVALID_TEXT)


class UnusablePhoto(ValueError):
    """A file sent as a photo that cannot be kept as one (not a picture, too big, damaged);
    its message is the sentence the citizen is told."""


def clean_text(text: str) -> str:
    """Citizens' text as it is stored: unwanted controls and invisible characters removed,
    CR LF made LF. Raises InvalidText for text that is not valid Unicode at all."""
    if _SURROGATE.search(text):
        raise InvalidText()
    return _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_json(value: Any) -> Any:
    """Every string in a parsed JSON value (keys too) cleaned with `clean_text`.

    Walked with a stack of its own, not by recursion: JSON nested as deep as the parser allows
    must not exhaust Python's stack here (the fuzz tests found that it did)."""
    root: list[Any] = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = clean_text(item)
        elif isinstance(item, list):
            copy = list(item)
            container[key] = copy
            pending.extend((copy, index) for index in range(len(copy)))
        elif isinstance(item, dict):
            cleaned = {clean_text(str(k)): v for k, v in item.items()}
            container[key] = cleaned
            pending.extend((cleaned, k) for k in cleaned)
    return root[0]


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
    # The key in Minyi's file store once the file is kept there (a web-chat photo at once,
    # a WeChat or Telegram one after it is fetched).
    file: str = ""


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

    def cleaned(self) -> Inbound:
        """The same message with its text and place label through `clean_text`."""
        location = self.location
        if location is not None and location.label:
            location = Location(location.lat, location.lng, clean_text(location.label))
        return replace(self, text=clean_text(self.text), location=location)


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


class SeenAgain(list[Reply]):
    """The answer to a re-delivered message whose replies are no longer kept: it was handled
    before (never twice), and this says only that it was taken already. A channel replaying a
    message it had not answered yet (a WeChat push recovered after a crash) sends nothing for
    it: whatever the first turn said is gone, and "taken already" would only puzzle."""
