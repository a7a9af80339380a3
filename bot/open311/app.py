"""The Open311 GeoReport v2 sub-app under /open311/v2: every method of the spec in JSON and
XML, and every failure as the spec's error list — never an HTML page, never exception text."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web

from channels.base import read_body
from conversation.cases.deadlines import LegalDeadlines
from conversation.codes import CASE_CODE_RE
from conversation.office import OfficeConfig
from conversation.ports import Conflict
from storage.models import utcnow
from storage.times import iso
from storage.uow import Units

from . import filing, listing
from .render import FORMATS, errors, render
from .services import service_definition, service_list

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
WINDOW = timedelta(days=90)
SPEC = "http://wiki.open311.org/GeoReport_v2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Open311Parts:
    """What the endpoint uses: units of work, the office (services, forms), the deadlines,
    the partners' keys, and where it is published."""

    units: Units
    office: OfficeConfig
    deadlines: LegalDeadlines
    keys: tuple[str, ...]
    public_url: str | None
    started: datetime  # services change only with the office file, read at start


PARTS = web.AppKey("open311", Open311Parts)


class Refused(Exception):
    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__(descriptions[0])
        self.status, self.descriptions = status, list(descriptions)


def _format(request: web.Request) -> str:
    return request.match_info.get("fmt") or ("xml" if request.path.endswith(".xml") else "json")


@web.middleware
async def spec_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    fmt = _format(request)
    try:
        return await handler(request)
    except Refused as exc:
        return errors(exc.status, exc.descriptions, fmt)
    except filing.BadRequest as exc:
        return errors(400, exc.descriptions, fmt)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return errors(exc.status, [exc.reason], fmt)
    except Exception:
        log.exception("Open311 error on %s %s", request.method, request.path)
        return errors(500, ["Something went wrong on our side; try again later."], fmt)


async def discovery(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    base = parts.public_url or f"{request.scheme}://{request.host}"
    changeset = iso(parts.started, parts.units.tz)
    name = parts.office.name("zh")
    return render(
        {
            "changeset": changeset,
            "contact": name,
            "key_service": f"{name}: ask the office for an api_key to file requests.",
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": f"{base}/open311/v2",
                    "changeset": changeset,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
        _format(request),
        "discovery",
    )


def _shown(request: web.Request) -> tuple[str, ...]:
    """The categories whose requests Open311 shows (the office file may keep some out)."""
    return tuple(c.key for c in request.app[PARTS].office.categories if c.open311)


async def services(request: web.Request) -> web.Response:
    return render(service_list(request.app[PARTS].office), _format(request), "services")


async def service(request: web.Request) -> web.Response:
    office = request.app[PARTS].office
    code = request.match_info["code"]
    category = office.category(code)
    if category is None or not category.open311:
        raise Refused(404, f"No service with service_code {code!r}.")
    return render(service_definition(office, category), _format(request), "service_definition")


async def get_requests(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    wanted = _wanted(request.query, parts)
    async with parts.units() as uow:
        cases = await listing.find(uow, wanted, _shown(request))
        items = listing.service_requests(uow, cases, parts.office)
    return render(items, _format(request), "service_requests")


async def get_request(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    code = request.match_info["id"].upper()
    if CASE_CODE_RE.fullmatch(code):
        async with parts.units() as uow:
            cases = await listing.find(uow, listing.Wanted(codes=(code,)), _shown(request))
            items = listing.service_requests(uow, cases, parts.office)
        if items:
            return render(items, _format(request), "service_requests")
    raise Refused(404, f"No service request {request.match_info['id']!r}.")


async def post_request(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    fields = filing.read_form(await read_body(request, MAX_BODY))
    given = (fields.get("api_key") or [""])[0]
    source = filing.partner(parts.keys, given) if given else None
    if source is None:
        raise Refused(403, "A valid api_key is needed to file a service request.")
    checked, media = filing.read_filing(fields, parts.office)
    for attempt in range(3):
        try:
            async with parts.units() as uow:
                case, token = await filing.file_request(
                    uow, checked, media, parts.office, parts.deadlines, f"open311:{source}"
                )
                notice = filing.service_notice(case, parts.office, parts.units.tz)
                await uow.commit()
            break
        except Conflict:  # the new code was taken, once in a billion: file again
            if attempt == 2:
                raise
    item = {
        "service_request_id": case.code,
        "token": token,
        "service_notice": notice,
        "account_id": None,
    }
    return render([item], _format(request), "service_requests")


async def token(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    given = request.match_info["token"]
    async with parts.units() as uow:
        case = await filing.by_token(uow, given)
        code = case.code if case is not None else None
    if code is None:
        raise Refused(404, f"No service request was filed with token {given!r}.")
    item = {"service_request_id": code, "token": given}
    return render([item], _format(request), "service_requests")


async def not_found(request: web.Request) -> web.Response:
    raise Refused(404, "No such method: see discovery.json (formats: .json and .xml).")


def _wanted(query: Any, parts: Open311Parts) -> listing.Wanted:
    problems: list[str] = []
    codes = _list(query, "service_request_id")  # as many as a URL holds (8 KiB: ~450)
    services = _list(query, "service_code")
    statuses = _list(query, "status")
    if set(statuses) - set(listing.CASE_STATUSES):
        problems.append("status: open or closed (a comma-separated list of them)")
    end = _date(query, "end_date", parts, problems, end=True)
    start = _date(query, "start_date", parts, problems, end=False)
    if not problems:
        end = end or utcnow()
        start = start or end - WINDOW
        if start > end:
            problems.append("start_date: must be before end_date")
        elif end - start > WINDOW:
            problems.append("start_date, end_date: the range may span at most 90 days")
    if problems:
        raise Refused(400, *problems)
    return listing.Wanted(
        codes=tuple(code.upper() for code in codes),
        services=tuple(services),
        statuses=tuple(statuses),
        start=start,
        end=end,
    )


def _list(query: Any, name: str) -> list[str]:
    return [item.strip() for item in query.get(name, "").split(",") if item.strip()]


def _date(
    query: Any, name: str, parts: Open311Parts, problems: list[str], *, end: bool
) -> datetime | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            # A day alone is the office's day: from its first moment, or to its last.
            day = datetime.fromisoformat(raw).date()
            return datetime.combine(day, time.max if end else time.min, parts.units.tz)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        problems.append(f"{name}: a W3C date-time with a zone, e.g. 2026-11-22T08:00:00+08:00")
        return None
    return value


def create_open311(parts: Open311Parts) -> web.Application:
    app = web.Application(middlewares=[spec_errors])
    app[PARTS] = parts
    fmt = "{fmt:" + "|".join(FORMATS) + "}"
    app.router.add_get(f"/discovery.{fmt}", discovery)
    app.router.add_get(f"/services.{fmt}", services)
    app.router.add_get(f"/services/{{code}}.{fmt}", service)
    app.router.add_get(f"/requests.{fmt}", get_requests)
    app.router.add_post(f"/requests.{fmt}", post_request)
    app.router.add_get(f"/requests/{{id}}.{fmt}", get_request)
    app.router.add_get(f"/tokens/{{token}}.{fmt}", token)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
