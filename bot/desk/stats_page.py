"""/desk/stats: the measures as charts and tables, and the same figures as CSV for Excel."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

from aiohttp import web

from bot.api.stats import Row
from bot.desk.cases import words
from bot.desk.measures import Statistics, statistics
from bot.desk.render import render
from bot.desk.services import desk_services
from bot.desk.wording import Words
from conversation.cases.measures import MEASURES as ALL_MEASURES
from storage.sqlite_loop import off_the_loop


# The API's measures, by the names the desk's texts use (desk.stats.<name>).
def _short(name: str) -> str:
    return name.removesuffix("_rate")


MEASURES = tuple(_short(m.name) for m in ALL_MEASURES)
DEFAULT_WEEKS = 12
LONGEST = timedelta(days=366)


class BadPeriod(ValueError):
    pass


def period(query: dict[str, str], today: date) -> tuple[date, date]:
    """[from, to] in whole local days; by default the last twelve weeks up to today."""
    try:
        last = date.fromisoformat(query["to"]) if query.get("to") else today
        first = (
            date.fromisoformat(query["from"])
            if query.get("from")
            else last - timedelta(weeks=DEFAULT_WEEKS) + timedelta(days=1)
        )
    except ValueError:
        raise BadPeriod from None
    if first > last or last - first > LONGEST:
        raise BadPeriod
    return first, last


async def _gather(request: web.Request) -> tuple[Statistics | None, date, date, Words]:
    services = desk_services(request)
    today = datetime.now(services.tz).date()
    w = words(services)
    try:
        first, last = period(dict(request.query), today)
    except BadPeriod:
        return None, today, today, w
    # Counting a period reads every case filed in it: not on the event loop (sqlite_loop.py).
    with off_the_loop():
        async with services.uow() as uow:
            figures = await statistics(uow, first, last, services.tz, services.office)
    return figures, first, last, w


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def measures_of(row: Row) -> dict[str, float | None]:
    return {m: row.counts.rate(f"{m}_rate") for m in MEASURES}


def _department(w: Words, key: str) -> str:
    return w.department(key) if key else w.t("desk.stats.no_department")


async def stats_page(request: web.Request) -> web.Response:
    figures, first, last, w = await _gather(request)
    if figures is None:
        return render(
            request,
            "stats.html",
            status=422,
            problem="desk.stats.bad_period",
            first=first,
            last=last,
            figures=None,
            w=w,
        )
    charts = {
        "measures": list(MEASURES),
        "labels": {m: w.t(f"desk.stats.{m}") for m in MEASURES},
        "weeks": [monday.strftime("%m-%d") for monday, _ in figures.weeks],
        "by_week": {
            m: [_percent(measures_of(row)[m]) for _, row in figures.weeks] for m in MEASURES
        },
        "departments": [_department(w, row.key) for row in figures.departments],
        "by_department": {
            m: [_percent(measures_of(row)[m]) for row in figures.departments] for m in MEASURES
        },
    }
    return render(
        request,
        "stats.html",
        figures=figures,
        first=first,
        last=last,
        w=w,
        problem="",
        measures=MEASURES,
        percent=_percent,
        department=lambda key: _department(w, key),
        measures_of=measures_of,
        chart_data=json.dumps(charts, ensure_ascii=False).replace("<", "\\u003c"),
    )


async def stats_csv(request: web.Request) -> web.Response:
    figures, first, last, w = await _gather(request)
    if figures is None:
        raise web.HTTPUnprocessableEntity(text=w.t("desk.stats.bad_period"))
    out = io.StringIO()
    table = csv.writer(out)
    table.writerow(
        [w.t("desk.stats.period"), w.t("desk.stats.rank"), w.t("desk.stats.cases")]
        + [
            part
            for m in ALL_MEASURES
            for part in (
                f"{w.t('desk.stats.' + _short(m.name))}(%)",
                w.t(f"desk.stats.count.{m.numerator}"),
                w.t(f"desk.stats.count.{m.denominator}"),
            )
        ]
    )

    def line(label: str, row: Row, ranked: bool = False) -> None:
        values: list[object] = [label, row.rank if ranked and row.rank else "", row.counts.cases]
        for m in ALL_MEASURES:
            values += [_percent(row.counts.rate(m.name)), getattr(row.counts, m.numerator)]
            values.append(getattr(row.counts, m.denominator))
        table.writerow(values)

    for monday, row in figures.weeks:
        line(w.t("desk.stats.week_of", date=monday.isoformat()), row)
    table.writerow([])
    table.writerow([w.t("desk.stats.department")])
    for row in figures.departments:
        line(_department(w, row.key), row, ranked=True)
    # The BOM tells Excel the file is UTF-8; without it Chinese comes out garbled.
    body = "\ufeff" + out.getvalue()
    name = f"minyi-stats-{first.isoformat()}-{last.isoformat()}.csv"
    return web.Response(
        body=body.encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
