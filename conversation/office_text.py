"""Words an office writes in its own file, and the error that names a wrong key of that file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class OfficeConfigError(ValueError):
    """The office file is wrong; the message names the key and what to write instead."""


@dataclass(frozen=True)
class LocalText:
    """A text an office writes itself, in Chinese and optionally English."""

    zh: str
    en: str = ""

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh


def local_text(value: Any, key: str) -> LocalText:
    """`"…"` or `{ zh = "…", en = "…" }` from the office file."""
    if isinstance(value, str) and value:
        return LocalText(value)
    if isinstance(value, dict) and isinstance(value.get("zh"), str) and value["zh"]:
        return LocalText(value["zh"], str(value.get("en", "")))
    raise OfficeConfigError(f'{key} must be a text or {{ zh = "…", en = "…" }}')
