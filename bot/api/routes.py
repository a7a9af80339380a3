"""The back office's API under /api/v1: bearer auth, JSON errors, cases and the event feed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.api import stats
from bot.api.intake import add_intake
from bot.api.openapi import openapi_document
from channels.base import json_response, read_whole
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.lifecycle import IllegalTransition
from conversation.cases.progress import InvalidProgress, Progress
from conversation.cases.routing import UnknownDepartment, routed
from conversation.cases.surveys import SurveyRules
from conversation.codes import CASE_CODE_RE
from conversation.messages import InvalidText, clean_json
from conversation.office import OfficeConfig
from conversation.ports import Conflict
from storage.documents import document_of
from storage.lifecycle import record_progress
from storage.models import ApiIdempotency, utcnow
from storage.sqlite_loop import off_the_loop
from storage.timeline import verify_chain
from storage.times import iso
from storage.uow import UnitOfWork, Units

log = logging.getLogger(__name__)

HandlerType = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_PAGE = 200
# Row ids and feed positions are INTEGER columns: PostgreSQL refuses a larger bound outright.
MAX_ROW_ID = 2**31 - 1
# By week, one CASE branch a week: a bound keeps the statement small.
MAX_STATS_PERIOD = timedelta(days=3 * 366)


@dataclass(frozen=True)
class ApiParts:
    """What the API uses: units of work, its token, the office (labels), and the case rules."""

    units: Units
    token: str | None
    office: OfficeConfig
    deadlines: LegalDeadlines
    surveys: SurveyRules


PARTS = web.AppKey("api", ApiParts)


class ApiError(Exception):
    def __init__(self, http_status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.extra = http_status, error, message, extra


def error_response(http_status: int, error: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": error, "message": message, **extra}, status=http_status)


@web.middleware
async def errors_as_json(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    """Every failure under /api/v1 answers `{"error", "message"}` with the right status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.message, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        response = error_response(exc.status, reason, exc.reason)
        if "Allow" in exc.headers:  # a 405 must say which methods are (RFC 9110 §15.5.6)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("API error on %s %s", request.method, request.path)
        return error_response(
            500, "internal", "Something went wrong on our side; the request can be retried."
        )


@web.middleware
async def bearer_auth(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    token = request.app[PARTS].token
    given = request.headers.get("Authorization", "")
    if not token:
        raise ApiError(401, "unauthorized", "The API is off: set MINYI_API_TOKEN to use it.")
    expected = f"Bearer {token}"
    # A header that is not UTF-8 arrives with surrogate escapes; compare bytes as received.
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    ):
        raise ApiError(
            401, "unauthorized", "Send the header 'Authorization: Bearer <MINYI_API_TOKEN>'."
        )
    return await handler(request)


def _uow(request: web.Request) -> UnitOfWork:
    return request.app[PARTS].units()


def _code(request: web.Request) -> str:
    code = request.match_info["code"].upper()
    if not CASE_CODE_RE.fullmatch(code):
        raise ApiError(404, "not_found", f"No case with code {request.match_info['code']!r}.")
    return code


async def get_case(request: web.Request) -> web.Response:
    code = _code(request)
    async with _uow(request) as uow:
        case = await uow.cases.by_code(code)
        if case is None:
            raise ApiError(404, "not_found", f"No case with code {code}.")
        document = await document_of(uow, case, events=True)
    return json_response(document)


async def verify_case(request: web.Request) -> web.Response:
    """件件可倒查: whether the case's timeline is whole and unaltered."""
    code = _code(request)
    async with _uow(request) as uow:
        case = await uow.cases.by_code(code)
        if case is None:
            raise ApiError(404, "not_found", f"No case with code {code}.")
        events = await uow.events.events(case)
        check = verify_chain(case.code, events)
    return json_response(
        {
            "code": code,
            "verified": check.ok,
            "events": len(events),
            "broken_at": check.broken_at,
            "reason": check.reason or None,
        }
    )


MAX_BODY = 64 * 1024
IDEMPOTENCY_KEY_MAX = 200


async def post_event(request: web.Request) -> web.Response:
    """The back office reports a step; a repeated Idempotency-Key replays instead of repeating."""
    code = _code(request)
    try:
        step = routed(await _progress_body(request), request.app[PARTS].office.departments)
    except InvalidProgress as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ApiError(
            422,
            "invalid",
            f"Idempotency-Key must be printable and at most {IDEMPOTENCY_KEY_MAX} characters.",
        )
    parts = request.app[PARTS]
    fingerprint = hashlib.sha256(json.dumps(asdict(step), sort_keys=True).encode()).hexdigest()
    for attempt in range(3):
        try:
            document, replayed = await _record(parts, code, step, key, fingerprint)
        except Conflict:
            if attempt == 2:
                raise
            continue  # the same key raced in from elsewhere, or the case moved: look again
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return json_response(document, headers=headers)
    raise AssertionError("unreachable")


async def _progress_body(request: web.Request) -> Progress:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    raw = await read_whole(request, MAX_BODY)
    if raw is None:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    try:
        body = clean_json(json.loads(raw))
    except InvalidText as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(
            422, "invalid", 'The body must be JSON, e.g. {"type": "accepted"}.'
        ) from None
    try:
        return Progress.from_json(body)
    except InvalidProgress as exc:
        raise ApiError(422, "invalid", str(exc)) from None


async def _record(
    parts: ApiParts, code: str, step: Progress, key: str, fingerprint: str
) -> tuple[dict[str, Any], bool]:
    async with parts.units() as uow:
        case = await uow.cases.by_code(code, for_update=True)
        if case is None:
            raise ApiError(404, "not_found", f"No case with code {code}.")
        replayed = False
        if key:
            seen = await uow.session.get(ApiIdempotency, f"{code}:{key}")
            if seen is not None and seen.fingerprint != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request on this case.",
                )
            replayed = seen is not None
        if not replayed:
            try:
                event = await record_progress(
                    uow, case, step, parts.deadlines, utcnow(), parts.surveys
                )
            except IllegalTransition as exc:
                raise ApiError(409, "illegal_transition", str(exc), status=exc.status) from None
            if key:
                uow.session.add(
                    ApiIdempotency(
                        key=f"{code}:{key}", fingerprint=fingerprint, event_seq=event.seq
                    )
                )
            await uow.flush()
        document = await document_of(uow, case, events=True)
        if not replayed:
            await uow.commit()
    return document, replayed


async def list_cases(request: web.Request) -> web.Response:
    query = request.query
    limit = _int_param(query, "limit", 50, 1, MAX_PAGE)
    after = _int_param(query, "cursor", 0, 0, MAX_ROW_ID)
    since = _time_param(query, "since")
    status = query.get("status", "")
    department = query.get("department", "").strip()
    if department:
        try:
            department = request.app[PARTS].office.departments.resolve(department)
        except UnknownDepartment as exc:
            raise ApiError(422, "invalid", str(exc)) from None
    async with _uow(request) as uow:
        cases = await uow.cases.page(
            status=status, since=since, after_id=after, limit=limit, department=department
        )
        documents = [await document_of(uow, case) for case in cases]
        next_cursor = str(cases[-1].id) if len(cases) == limit else None
    return json_response({"cases": documents, "next_cursor": next_cursor})


async def list_events(request: web.Request) -> web.Response:
    query = request.query
    limit = _int_param(query, "limit", 100, 1, MAX_PAGE)
    after = _int_param(query, "after", 0, 0, MAX_ROW_ID)
    async with _uow(request) as uow:
        entries = await uow.outbox.after(after, limit)
        events = [uow.outbox.to_json(e) for e in entries]
    return json_response({"events": events, "next": events[-1]["seq"] if events else after})


async def get_stats(request: web.Request) -> web.StreamResponse:
    """The measures (docs/measures.md) for cases filed in [from, to), as JSON or CSV."""
    query = request.query
    now = utcnow()
    end = _time_param(query, "to") or now
    start = _time_param(query, "from") or end - timedelta(days=30)
    if start >= end:
        raise ApiError(422, "invalid", "'from' must be before 'to'.")
    if end - start > MAX_STATS_PERIOD:
        raise ApiError(422, "invalid", "The period may be at most 3 years long.")
    by = query.get("by", "")
    if by and by not in stats.DIMENSIONS:
        raise ApiError(422, "invalid", f"'by' must be one of: {', '.join(stats.DIMENSIONS)}.")
    form = query.get("format", "json")
    if form not in ("json", "csv"):
        raise ApiError(422, "invalid", "'format' must be json or csv.")
    parts = request.app[PARTS]
    # Counting a period reads every case filed in it: not on the event loop (sqlite_loop.py).
    with off_the_loop():
        async with _uow(request) as uow:
            total, rows = await stats.figures(
                uow, start, end, by, office=parts.office, tz=parts.units.tz, now=now
            )
    if form == "csv":
        name = f"minyi-stats-{start.date().isoformat()}-{end.date().isoformat()}.csv"
        return web.Response(
            body=stats.as_csv(total, rows),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body: dict[str, Any] = {
        "from": iso(start, parts.units.tz),
        "to": iso(end, parts.units.tz),
        "by": by or None,
        "total": total.to_json(),
    }
    if by:
        body["groups"] = [row.to_json() for row in rows]
    return json_response(body)


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


def _int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, "invalid", f"{name} must be a whole number.") from None
    if not low <= value <= high:
        raise ApiError(422, "invalid", f"{name} must be between {low} and {high}.")
    return value


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)


def _time_param(query: Any, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422, "invalid", f"{name} must be an ISO 8601 time such as 2026-11-22T08:00:00+08:00."
        ) from None
    if value.tzinfo is None:
        raise ApiError(422, "invalid", f"{name} needs a time zone, e.g. +08:00 or Z.")
    # Far enough from the ends of the calendar that windows, days and time zones computed from
    # it (a 30-day default, the office's local dates) cannot overflow.
    if not EARLIEST <= value <= LATEST:
        raise ApiError(422, "invalid", f"{name} must be between the years 2000 and 2999.")
    return value


def create_api(parts: ApiParts) -> web.Application:
    api = web.Application(middlewares=[errors_as_json, bearer_auth])
    api[PARTS] = parts
    api.router.add_get("/cases", list_cases)
    add_intake(api, parts)  # POST /cases
    api.router.add_get("/cases/{code}", get_case)
    api.router.add_post("/cases/{code}/events", post_event)
    api.router.add_get("/cases/{code}/verify", verify_case)
    api.router.add_get("/events", list_events)
    api.router.add_get("/stats", get_stats)
    api.router.add_get("/openapi.json", openapi)
    return api
