"""/desk/stats: the measures as charts and tables, and the same figures as CSV for Excel."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

from aiohttp import web

from bot.desk.cases import words
from bot.desk.measures import Row, Statistics, statistics
from bot.desk.render import render
from bot.desk.services import desk_services
from bot.desk.wording import Words

MEASURES = ("satisfaction", "on_time_acceptance", "on_time_closure", "repeat")
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
    async with services.uow() as uow:
        figures = await statistics(uow, first, last, services.tz)
    return figures, first, last, w


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


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
        "labels": {m: w.t(f"desk.stats.{m}") for m in MEASURES},
        "weeks": [monday.strftime("%m-%d") for monday, _ in figures.weeks],
        "by_week": {m: [_percent(row.measures()[m]) for _, row in figures.weeks] for m in MEASURES},
        "departments": [_department(w, row.key) for row in figures.departments],
        "by_department": {
            m: [_percent(row.measures()[m]) for row in figures.departments] for m in MEASURES
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
        chart_data=json.dumps(charts, ensure_ascii=False).replace("<", "\\u003c"),
    )


async def stats_csv(request: web.Request) -> web.Response:
    figures, first, last, w = await _gather(request)
    if figures is None:
        raise web.HTTPUnprocessableEntity(text=w.t("desk.stats.bad_period"))
    out = io.StringIO()
    table = csv.writer(out)
    table.writerow(
        [w.t("desk.stats.period"), w.t("desk.stats.cases")]
        + [f"{w.t(f'desk.stats.{m}')}(%)" for m in MEASURES]
    )

    def line(label: str, row: Row) -> None:
        table.writerow([label, row.tally.cases] + [_percent(row.measures()[m]) for m in MEASURES])

    for monday, row in figures.weeks:
        line(w.t("desk.stats.week_of", date=monday.isoformat()), row)
    table.writerow([])
    table.writerow([w.t("desk.stats.department")])
    for row in figures.departments:
        line(_department(w, row.key), row)
    # The BOM tells Excel the file is UTF-8; without it Chinese comes out garbled.
    body = "\ufeff" + out.getvalue()
    name = f"minyi-stats-{first.isoformat()}-{last.isoformat()}.csv"
    return web.Response(
        body=body.encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
