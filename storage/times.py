"""How Minyi writes a moment for other systems: ISO 8601 in the office's time zone, with its
offset (2026-11-30T15:58:43+08:00) — one convention for the API, the stream and the timeline's
data, whatever the database handed back (PostgreSQL and SQLite give UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any


def iso(moment: datetime, tz: tzinfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the database's own times are UTC
    return moment.astimezone(tz).isoformat()


def iso_or_none(moment: datetime | None, tz: tzinfo) -> str | None:
    return iso(moment, tz) if moment is not None else None


def restamped(value: Any, tz: tzinfo) -> Any:
    """An ISO time kept as text (a stage's due time) in the office's zone; anything else as is."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return iso(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    return value
