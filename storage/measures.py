"""The measures' counts for cases filed in a period: whole old days from the daily rollup
(storage/rollup.py), the rest counted live (storage/counting.py), the two added.

The rules of what counts are docs/measures.md; the rates and the ranking are
conversation/cases/measures.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from conversation.cases.measures import Counts

from . import rollup as rolled
from .counting import GROUPINGS, Measured, live, week_starts

__all__ = ["GROUPINGS", "Measured", "keep_rollup_up", "measured", "week_starts"]


async def measured(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    by: str = "",
    *,
    now: datetime,
    repeat_days: int,
    tz: tzinfo = UTC,
    subtrees: Mapping[str, frozenset[str]] | None = None,
    rollup: bool = False,
) -> Measured:
    """Counts of the cases filed in [start, end), in total and (with `by`) per group.

    By department a case counts for its lead department and for each co-handling one; the
    total counts it once. A unit of `subtrees` (one with units below it) counts the cases of
    its whole subtree instead, each once. By week, weeks run Monday to Sunday in `tz`; every
    week touching the period is a row, an empty one too.

    With `rollup`, whole local days old enough to be rolled up are read from the daily rollup
    (storage/rollup.py), which this may bring up to date in the session's transaction: the
    caller commits it. The answer is the same either way."""
    subtrees = dict(subtrees or {})
    result = Measured()
    if by == "week":
        last_instant = end - timedelta(microseconds=1)
        weeks = week_starts(start.astimezone(tz).date(), last_instant.astimezone(tz).date(), tz)
        for monday, _ in weeks:
            result.groups[monday.isoformat()] = Counts()
    ranges = [(start, end)]
    if rollup:
        shape = rolled.Shape.of(tz, repeat_days, subtrees)
        if shape is not None:
            ranges = await rolled.add_rolled_up(
                session, result, start, end, by, now=now, shape=shape
            )
    if ranges:
        await live(session, result, ranges, start, end, by, now, repeat_days, tz, subtrees)
    return result


async def keep_rollup_up(
    session: AsyncSession,
    *,
    now: datetime,
    repeat_days: int,
    tz: tzinfo,
    subtrees: Mapping[str, frozenset[str]],
) -> int:
    """Counts old days into the daily rollup ahead of the questions (the `stats-rollup` job);
    returns how many are still to count. The caller commits."""
    shape = rolled.Shape.of(tz, repeat_days, dict(subtrees))
    if shape is None:
        return 0
    return await rolled.keep_up(session, now=now, shape=shape)
