"""The measures' daily rollup: storage/measures.py's counts per local day of filing and grouping,
kept for days old enough that they rarely change, so that a question over years reads a few
rows a day instead of every case.

Exact by construction, never an estimate:

- **What a day holds.** For each whole local day (the office's zone) and each grouping —
  `total`, lead `department`, `co_department`, `subtree` (a unit with units below it: the
  cases of its whole subtree, each once), `category`, `channel` — the same `COUNT(*) FILTER`
  counts storage/counting.py takes over that day's cases. Weeks are sums of days.
- **Facts that change.** Triggers on `cases` and `case_co_departments` (migration 0022) write
  the filing time of every case inserted, deleted, or changed in a column the measures read,
  in the writer's own transaction, whoever the writer is. Before the rollup is read those
  notes are taken (deleted, under a lock on PostgreSQL) and their days dropped, to be counted
  again.
- **Time that passes.** Two counts depend on "now": an undecided petition enters
  `acceptance_due` when its acceptance deadline passes, an accepted unreplied one enters
  `reply_due` when its finish deadline passes. A day keeps the last such deadline before the
  moment it was counted and the next one after; its counts hold for any "now" between them,
  and outside that the day is counted again.
- **What it was counted for.** The zone, the repeat window and the department tree are
  settings; the rollup records their fingerprint and starts afresh when they differ.
- **What is not rolled up.** Days within `HORIZON` of now (new filings, acceptance deadlines),
  the partial days at the edges of a period, and days not yet counted beyond `BATCH_DAYS` in
  one request are counted live by storage/counting.py, and the two parts added.

The rollup is filled lazily: a request counts (at most `BATCH_DAYS`) the missing or outdated
days it needs, in its own transaction, which its caller commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, exists, func, insert, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.cases.kinds import SUGGESTION
from conversation.cases.measures import Counts

from .counting import Measured, _counts, _key, _sums, co_handled_only
from .models import (
    Case,
    CaseCoDepartment,
    StatsDirty,
    StatsRollup,
    StatsRollupDay,
    StatsRollupState,
)

VERSION = 1  # raised when what a count means changes: the whole rollup is counted again
# Days older than this are rolled up. Younger ones change all the time (new filings, the
# acceptance deadline of 15 days) and are counted live. An older day whose open cases still have
# a deadline ahead is rolled up all the same, with that deadline as the end of its validity:
# when it passes the day is counted again (a day's finish deadlines end at 23:59:59 local
# time, so that is mostly once a day, on the first question after midnight).
HORIZON = timedelta(days=31)
BATCH_DAYS = 92  # days counted into the rollup by one request at most; the rest live
LOCK = 0x6D696E7969_5354  # pg_advisory_xact_lock key: one writer of the rollup at a time
COUNT_NAMES = tuple(item.name for item in fields(Counts))
# The rollup groupings a question needs.
NEEDS = {
    "": ("total",),
    "week": ("total",),
    "department": ("total", "department", "co_department", "subtree"),
    "category": ("total", "category"),
    "channel": ("total", "channel"),
}


@dataclass(frozen=True)
class Shape:
    """What the rollup is counted for."""

    zone: str
    tz: tzinfo
    repeat_days: int
    subtrees: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(
        cls, tz: tzinfo, repeat_days: int, subtrees: Mapping[str, frozenset[str]]
    ) -> Shape | None:
        """None for a zone the database cannot name (a bare offset): no rollup then."""
        if isinstance(tz, ZoneInfo):
            zone = tz.key
        elif tz is UTC:
            zone = "UTC"
        else:
            return None
        tree = tuple(sorted((unit, tuple(sorted(codes))) for unit, codes in subtrees.items()))
        return cls(zone, tz, repeat_days, tree)

    @property
    def fingerprint(self) -> str:
        described = json.dumps([VERSION, self.zone, self.repeat_days, self.subtrees])
        return hashlib.sha256(described.encode()).hexdigest()

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.tz)


def whole_days(start: datetime, end: datetime, shape: Shape) -> tuple[date, date]:
    """The first and last local days lying wholly in [start, end) (first > last: none)."""
    first = start.astimezone(shape.tz).date()
    if shape.midnight(first) < start:
        first += timedelta(days=1)
    last = end.astimezone(shape.tz).date() - timedelta(days=1)
    if shape.midnight(last + timedelta(days=1)) > end:
        last -= timedelta(days=1)
    return first, last


def newest_day(now: datetime, shape: Shape) -> date:
    """The newest day the rollup keeps."""
    return (now - HORIZON).astimezone(shape.tz).date() - timedelta(days=1)


def _holds(day: StatsRollupDay | Any, now: datetime) -> bool:
    after, until = day.valid_after, day.valid_until
    return (after is None or after < now) and (until is None or now <= until)


async def add_rolled_up(
    session: AsyncSession,
    result: Measured,
    start: datetime,
    end: datetime,
    by: str,
    *,
    now: datetime,
    shape: Shape,
) -> list[tuple[datetime, datetime]]:
    """Adds the rolled-up days of [start, end) to `result`; returns the ranges left to count
    live."""
    first, last = whole_days(start, end, shape)
    last = min(last, newest_day(now, shape))
    if first > last:
        return [(start, end)]
    if not await _bring_up_to_date(session, first, last, now, shape):
        return [(start, end)]
    usable = await _usable(session, first, last, now)
    if not usable:
        return [(start, end)]
    await _read(session, result, usable, first, last, by, shape)
    return _rest(start, end, usable, shape)


async def keep_up(session: AsyncSession, *, now: datetime, shape: Shape) -> int:
    """Counts into the rollup (at most `BATCH_DAYS`) the days a question would otherwise count
    itself, oldest case to `newest_day`: the `stats-rollup` job's share, so that the first long
    question after an upgrade, or after midnight re-dates open cases' days, finds them counted.
    Returns how many days are still to count (0: up to date); its caller commits."""
    oldest = await session.scalar(select(func.min(Case.created_at)))
    if oldest is None:
        return 0
    first = oldest.astimezone(shape.tz).date()  # UTCDateTime: aware, min() keeps the type
    last = newest_day(now, shape)
    if first > last or await _settled(session, first, last, now, shape):
        return 0
    await _bring_up_to_date(session, first, last, now, shape)
    return (last - first).days + 1 - len(await _usable(session, first, last, now))


async def _usable(session: AsyncSession, first: date, last: date, now: datetime) -> list[date]:
    rows = await session.execute(
        select(StatsRollupDay.day, StatsRollupDay.valid_after, StatsRollupDay.valid_until).where(
            StatsRollupDay.day.between(first, last)
        )
    )
    return sorted(row.day for row in rows if _holds(row, now))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def _settled(
    session: AsyncSession, first: date, last: date, now: datetime, shape: Shape
) -> bool:
    """Whether the rollup holds every day of [first, last], counted for `shape`, for `now`."""
    state = await session.scalar(select(StatsRollupState.fingerprint))
    noted = await session.scalar(
        select(exists().where(StatsDirty.filed_at < shape.midnight(last + timedelta(days=1))))
    )
    usable = await _usable(session, first, last, now)
    return state == shape.fingerprint and not noted and len(usable) == (last - first).days + 1


async def _bring_up_to_date(
    session: AsyncSession, first: date, last: date, now: datetime, shape: Shape
) -> bool:
    """Brings the rollup up to date for [first, last]; False when it cannot be read now."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if await _settled(session, first, last, now, shape):
        if not postgres:
            return True  # SQLite: this transaction is the one writer (BEGIN IMMEDIATE)
        # Readers share the lock, a writer has it alone: no day changes between reading which
        # days are rolled up and reading their counts. Taken, the rollup is looked at again;
        # if a writer changed it meanwhile this question is counted live.
        await session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": LOCK})
        return await _settled(session, first, last, now, shape)
    if postgres:
        # One writer at a time; every statement after it sees what an earlier one committed.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
    state = await session.scalar(select(StatsRollupState.fingerprint))
    if state != shape.fingerprint:
        await session.execute(delete(StatsDirty))
        await session.execute(delete(StatsRollup))
        await session.execute(delete(StatsRollupDay))
        await session.execute(delete(StatsRollupState))
        await session.execute(insert(StatsRollupState).values(id=1, fingerprint=shape.fingerprint))
    else:
        await _forget(session, await _take_notes(session, shape))
    have = set(await _usable(session, first, last, now))
    wanted = [day for day in reversed(_days(first, last)) if day not in have][:BATCH_DAYS]
    if wanted:
        await _count(session, sorted(wanted), now, shape)
    return True


async def _take_notes(session: AsyncSession, shape: Shape) -> set[date]:
    """The local days of the cases noted as changed; the notes are deleted."""
    if session.get_bind().dialect.name == "postgresql":
        # Only notes already committed are seen and deleted; a later one stays for next time.
        rows = await session.execute(
            text(
                "WITH taken AS (DELETE FROM stats_dirty RETURNING filed_at)"
                " SELECT DISTINCT date(timezone(:zone, filed_at)) AS day FROM taken"
            ),
            {"zone": shape.zone},
        )
        return {row.day for row in rows}
    # SQLite: this transaction holds the one write lock (BEGIN IMMEDIATE); nobody writes now.
    minutes = await session.scalars(select(func.distinct(func.substr(StatsDirty.filed_at, 1, 16))))
    days = {
        datetime.fromisoformat(minute).replace(tzinfo=UTC).astimezone(shape.tz).date()
        for minute in minutes
    }
    await session.execute(delete(StatsDirty))
    return days


async def _forget(session: AsyncSession, days: Iterable[date]) -> None:
    chosen = sorted(days)
    for at in range(0, len(chosen), 500):
        part = chosen[at : at + 500]
        await session.execute(delete(StatsRollup).where(StatsRollup.day.in_(part)))
        await session.execute(delete(StatsRollupDay).where(StatsRollupDay.day.in_(part)))


def _runs(days: Sequence[date], shape: Shape, dialect: str) -> list[tuple[date, date, Any]]:
    """Consecutive days counted by one query each, with the expression of a case's local day.

    PostgreSQL converts to the zone itself. SQLite knows no zones: a run keeps one UTC offset,
    and a day with a change of offset (daylight saving) is a run of its own."""
    runs: list[tuple[date, date, Any]] = []  # (first, last, how its days are told apart)
    for day in days:
        offset = shape.midnight(day).utcoffset()
        following = shape.midnight(day + timedelta(days=1)).utcoffset()
        if dialect == "postgresql":
            how: Any = "zone"
        elif offset == following and offset is not None:
            how = int(offset.total_seconds())
        else:
            how = day  # a day of its own
        if runs and runs[-1][1] == day - timedelta(days=1) and runs[-1][2] == how:
            runs[-1] = (runs[-1][0], day, how)
        else:
            runs.append((day, day, how))
    return [(first, last, _day_of(how, shape)) for first, last, how in runs]


def _day_of(how: Any, shape: Shape) -> Any:
    if how == "zone":
        return func.date(func.timezone(shape.zone, Case.created_at))
    if isinstance(how, int):
        return func.date(Case.created_at, f"{how:+d} seconds")
    return literal(how.isoformat())


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


async def _count(session: AsyncSession, days: Sequence[date], now: datetime, shape: Shape) -> None:
    """Counts `days` into the rollup, replacing what it held for them."""
    dialect = session.get_bind().dialect.name
    sums = _sums(now, shape.repeat_days, dialect)
    await _forget(session, days)
    kept: dict[tuple[date, str, str], Counts] = {}
    bounds: dict[date, tuple[datetime | None, datetime | None]] = {}
    for first, last, day in _runs(days, shape, dialect):
        filed = and_(
            Case.created_at >= shape.midnight(first),
            Case.created_at < shape.midnight(last + timedelta(days=1)),
        )
        queries: list[tuple[str, Any]] = [
            ("total", select(day.label("day"), literal("").label("key"), *sums).where(filed)
             .group_by(day)),
            *(
                (name, select(day.label("day"), getattr(Case, name).label("key"), *sums)
                 .where(filed).group_by(day, getattr(Case, name)))
                for name in ("department", "category", "channel")
            ),
            ("co_department",
             select(day.label("day"), CaseCoDepartment.department.label("key"), *sums)
             .join(Case, Case.id == CaseCoDepartment.case_id).where(filed)
             .group_by(day, CaseCoDepartment.department)),
            *(
                (f"extra:{unit}", select(day.label("day"), literal(unit).label("key"), *sums)
                 .where(filed, co_handled_only(frozenset(codes))).group_by(day))
                for unit, codes in shape.subtrees
            ),
        ]  # fmt: skip
        if dialect == "postgresql":
            # One pass for the total, lead department, category and channel, and the deadlines.
            await _count_together(session, day, filed, sums, now, kept, bounds)
            queries = queries[4:]
        else:
            for row in await session.execute(_deadlines(day, filed, now).group_by(day)):
                bounds[_day(row.day)] = _between(row)
        for dimension, query in queries:
            for row in await session.execute(query):
                counts = _counts(row)
                if counts.cases:  # None and "" are one key, as storage/counting.py has them
                    # A subtree: its co-handled-only cases here, its led ones added below.
                    dimension = "subtree" if dimension.startswith("extra:") else dimension
                    where = (_day(row.day), dimension, _key(row.key))
                    kept.setdefault(where, Counts()).add(counts)
    for unit, codes in shape.subtrees:
        for (d, dimension, key), counts in list(kept.items()):
            if dimension == "department" and key in codes:
                kept.setdefault((d, "subtree", unit), Counts()).add(counts)
    rows = [
        {"day": d, "dimension": dimension, "key": key}
        | {n: getattr(counts, n) for n in COUNT_NAMES}
        for (d, dimension, key), counts in kept.items()
    ]
    for at in range(0, len(rows), 1000):
        await session.execute(insert(StatsRollup), rows[at : at + 1000])
    await session.execute(
        insert(StatsRollupDay),
        [
            {
                "day": d,
                "computed_at": now,
                "valid_after": bounds.get(d, (None, None))[0],
                "valid_until": bounds.get(d, (None, None))[1],
            }
            for d in days
        ],
    )


# GROUPING SETS (PostgreSQL): which columns a row's set left out, as `grouping()` tells it.
TOGETHER = {7: "total", 3: "department", 5: "category", 6: "channel"}


async def _count_together(
    session: AsyncSession,
    day: Any,
    filed: Any,
    sums: list[Any],
    now: datetime,
    kept: dict[tuple[date, str, str], Counts],
    bounds: dict[date, tuple[datetime | None, datetime | None]],
) -> None:
    grouped = (Case.department, Case.category, Case.channel)
    sets = func.grouping_sets(*(tuple_(day, *g) for g in ((), *((c,) for c in grouped))))
    query = (
        select(day.label("day"), *grouped, func.grouping(*grouped).label("left_out"), *sums)
        .add_columns(*_deadline_columns(now))
        .where(filed)
        .group_by(sets)
    )
    for row in await session.execute(query):
        dimension = TOGETHER[row.left_out]
        if dimension == "total":
            bounds[_day(row.day)] = _between(row)
        key = "" if dimension == "total" else getattr(row, dimension)
        counts = _counts(row)
        if counts.cases:
            kept.setdefault((_day(row.day), dimension, _key(key)), Counts()).add(counts)


def _between(row: Any) -> tuple[datetime | None, datetime | None]:
    after = [t for t in (row.accept_before, row.finish_before) if t is not None]
    until = [t for t in (row.accept_after, row.finish_after) if t is not None]
    return max(after, default=None), min(until, default=None)


def _deadlines(day: Any, filed: Any, now: datetime) -> Any:
    return select(day.label("day"), *_deadline_columns(now)).where(filed)


def _deadline_columns(now: datetime) -> list[Any]:
    """The deadlines of a day's open cases nearest before and after `now`: between them the
    two deadline-dependent counts stay as counted (storage/counting.py `_conditions`)."""
    petition = Case.kind != SUGGESTION.name
    undecided = and_(petition, Case.decided_at.is_(None), Case.accept_due_at.is_not(None))
    unreplied = and_(petition, Case.first_replied_at.is_(None), Case.finish_due_at.is_not(None))
    return [
        func.max(case((and_(undecided, Case.accept_due_at < now), Case.accept_due_at))).label(
            "accept_before"
        ),
        func.min(case((and_(undecided, Case.accept_due_at >= now), Case.accept_due_at))).label(
            "accept_after"
        ),
        func.max(case((and_(unreplied, Case.finish_due_at < now), Case.finish_due_at))).label(
            "finish_before"
        ),
        func.min(case((and_(unreplied, Case.finish_due_at >= now), Case.finish_due_at))).label(
            "finish_after"
        ),
    ]


async def _read(
    session: AsyncSession,
    result: Measured,
    usable: Sequence[date],
    first: date,
    last: date,
    by: str,
    shape: Shape,
) -> None:
    """Adds the rolled-up counts of the `usable` days to `result`."""
    have = set(usable)
    left_out = [d for d in _days(usable[0], usable[-1]) if d not in have]
    columns: list[Any] = [StatsRollup.dimension, StatsRollup.key]
    if by == "week":
        columns.append(StatsRollup.day)
    query = select(*columns, *(func.sum(getattr(StatsRollup, n)).label(n) for n in COUNT_NAMES))
    query = query.where(
        StatsRollup.day.between(usable[0], usable[-1]), StatsRollup.dimension.in_(NEEDS[by])
    )
    if left_out:
        query = query.where(StatsRollup.day.not_in(left_out))
    units = {unit for unit, _ in shape.subtrees}
    for row in await session.execute(query.group_by(*columns)):
        counts = _counts(row)
        if row.dimension == "total":
            result.total.add(counts)
            if by == "week":
                day = _day(row.day)
                monday = (day - timedelta(days=day.weekday())).isoformat()
                result.groups.setdefault(monday, Counts()).add(counts)
            continue
        key = _key(row.key)
        if row.dimension in ("department", "co_department") and key in units:
            continue  # a unit with units below it counts its subtree, each case once
        result.groups.setdefault(key, Counts()).add(counts)


def _rest(
    start: datetime, end: datetime, usable: Sequence[date], shape: Shape
) -> list[tuple[datetime, datetime]]:
    """[start, end) without the usable days, as few ranges as can be."""
    spans: list[tuple[datetime, datetime]] = []
    for day in usable:
        begins, ends = shape.midnight(day), shape.midnight(day + timedelta(days=1))
        if spans and spans[-1][1] == begins:
            spans[-1] = (spans[-1][0], ends)
        else:
            spans.append((begins, ends))
    rest: list[tuple[datetime, datetime]] = []
    cursor = start
    for begins, ends in spans:
        if cursor < begins:
            rest.append((cursor, begins))
        cursor = ends
    if cursor < end:
        rest.append((cursor, end))
    return rest
