"""GET /api/v1/stats: the measures for cases filed in a period, overall or in ranked rows, as
JSON or as CSV for Excel. What each measure counts is docs/measures.md."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from conversation.cases.measures import MEASURES, Counts, ranks
from conversation.office import OfficeConfig
from storage.measures import GROUPINGS, Measured, measured
from storage.uow import UnitOfWork

DIMENSIONS = GROUPINGS


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    counts: Counts
    rank: int | None  # None: not a unit that is ranked (cases with no department yet)
    # By department: the unit's depth in the office's tree (1 = its top, 0 = not declared);
    # ranks compare the units of one level. None for other groupings.
    level: int | None = None

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {"key": self.key, "label": self.label, "rank": self.rank}
        if self.level is not None:
            head["level"] = self.level
        return {**head, **self.counts.to_json()}


async def figures(
    uow: UnitOfWork,
    start: datetime,
    end: datetime,
    by: str,
    *,
    office: OfficeConfig,
    tz: tzinfo,
    now: datetime,
) -> tuple[Counts, list[Row]]:
    """The total, and with `by` one row per group in 红旗榜 order. By department a unit with
    units below it counts its whole subtree. Commits what the daily rollup learned."""
    result = await measured(
        uow.session,
        start,
        end,
        by,
        now=now,
        repeat_days=office.repeats.window_days,
        tz=tz,
        subtrees=office.departments.subtrees(),
        rollup=True,
    )
    await uow.commit()
    return result.total, rows_of(result, by, office)


def rows_of(result: Measured, by: str, office: OfficeConfig) -> list[Row]:
    groups = dict(result.groups)
    if by == "department":
        # Every declared unit is on the board, one with no cases too.
        for unit in office.departments.units:
            groups.setdefault(unit.code, Counts())
    ranked = [key for key in groups if key or by != "department"]
    if by != "department":
        places = dict(zip(ranked, ranks([groups[k] for k in ranked]), strict=True))
        rows = [Row(k, _label(k, by, office), c, places.get(k)) for k, c in groups.items()]
        if by == "week":
            return sorted(rows, key=lambda r: r.key)
        return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.key))
    # A district and its bureaus are not rivals: each level of the tree is ranked by itself.
    level = {key: office.departments.level(key) for key in groups}
    places = {}
    for depth in set(level.values()):
        peers = [key for key in ranked if level[key] == depth]
        places.update(zip(peers, ranks([groups[k] for k in peers]), strict=True))
    rows = [Row(k, _label(k, by, office), c, places.get(k), level[k]) for k, c in groups.items()]
    # The tree from the top down (units not declared last), each level in rank order.
    return sorted(
        rows,
        key=lambda r: (r.rank is None, r.level == 0, r.level or 0, r.rank or 0, r.key),
    )


def _label(key: str, by: str, office: OfficeConfig) -> str:
    if by == "category" and (category := office.category(key)) is not None:
        return category.label("zh")
    if by == "department":
        return office.departments.name(key)
    return key


CSV_COUNTS = ("cases", "petitions", "suggestions_received", "suggestions_adopted",
              "suggestions_partly_adopted", "suggestions_not_adopted")  # fmt: skip


def as_csv(total: Counts, rows: list[Row]) -> bytes:
    """The same figures as the JSON, one line per row and a last line for the total; UTF-8 with
    a BOM, without which Excel shows the Chinese labels garbled."""
    out = io.StringIO()
    table = csv.writer(out)
    header = ["key", "label", "rank", *CSV_COUNTS]
    for m in MEASURES:
        header += [m.name, m.numerator, m.denominator]
    table.writerow(header)

    def line(key: str, label: str, rank: int | None, counts: Counts) -> None:
        values: list[Any] = [key, label, "" if rank is None else rank]
        values += [getattr(counts, name) for name in CSV_COUNTS]
        for m in MEASURES:
            value = counts.rate(m.name)
            values += ["" if value is None else value, getattr(counts, m.numerator)]
            values.append(getattr(counts, m.denominator))
        table.writerow(values)

    for row in rows:
        line(row.key, row.label, row.rank, row.counts)
    line("TOTAL", "合计", None, total)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
