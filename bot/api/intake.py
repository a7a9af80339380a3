"""POST /api/v1/cases: a case filed for a citizen by staff (代办), a grid worker (网格员) or a
kiosk — checked like the chat's form, filed like the chat's submit, the receipt sent by SMS."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any, Protocol

from aiohttp import web

from channels.base import json_error, json_response, parse_json_object, read_body
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.routing import UnknownDepartment
from conversation.messages import InvalidText, clean_json
from conversation.office import OfficeConfig
from conversation.ports import Conflict
from storage.documents import document_of
from storage.filing import file_for_citizen
from storage.models import ApiIdempotency
from storage.uow import Units

from .filing_form import Filing, RawFiling, check_filing, letter, submit_command

MAX_BODY = 64 * 1024
IDEMPOTENCY_KEY_MAX = 200
CHANNEL = "api"
FIELDS = frozenset(
    {
        "kind",
        "category",
        "description",
        "location",
        "contact",
        "anonymous",
        "source",
        "mailbox",
        "department",
        "answers",
        "language",
    }
)
# Who filed, as the office will read it in its statistics: grid:07, kiosk:lobby-1, staff:wangfang.
SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,15}:[A-Za-z0-9_.-]{1,47}")
TEXT_LIMITS = {"department": 100, "mailbox": 40}


class IntakeParts(Protocol):
    """What filing needs of the API's parts."""

    @property
    def units(self) -> Units: ...

    @property
    def office(self) -> OfficeConfig: ...

    @property
    def deadlines(self) -> LegalDeadlines: ...


class Invalid(Exception):
    """The body is wrong: every wrong field, with why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


def add_intake(api: web.Application, parts: IntakeParts) -> None:
    """Register POST /cases on the /api/v1 app (which authenticates and answers errors)."""

    async def post_case(request: web.Request) -> web.Response:
        return await file_from_request(request, parts)

    api.router.add_post("/cases", post_case)


async def file_from_request(request: web.Request, parts: IntakeParts) -> web.Response:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        return json_error(
            422,
            "invalid",
            f"Idempotency-Key must be printable and at most {IDEMPOTENCY_KEY_MAX} characters.",
        )
    body = parse_json_object(await read_body(request, MAX_BODY))
    if body is None:
        return json_error(422, "invalid", 'The body must be a JSON object, e.g. {"kind": …}.')
    try:
        body = clean_json(body)
    except InvalidText as exc:
        return json_error(422, "invalid", str(exc))
    try:
        filing, extra = read_filing(body, parts.office)
    except Invalid as exc:
        return json_response(
            {
                "error": "invalid",
                "message": "Some fields are wrong: " + ", ".join(sorted(exc.fields)) + ".",
                "fields": exc.fields,
            },
            status=422,
        )
    fingerprint = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    for attempt in range(3):
        try:
            return await _file(parts, filing, extra, key, fingerprint)
        except Conflict:
            if attempt == 2:
                raise
            # The same key raced in from elsewhere (or, once in a billion, the code was taken).
    raise AssertionError("unreachable")


async def _file(
    parts: IntakeParts, filing: Filing, extra: dict[str, str], key: str, fingerprint: str
) -> web.Response:
    origin = f"{CHANNEL}:{key}" if key else f"{CHANNEL}:{uuid.uuid4().hex}"
    async with parts.units() as uow:
        existing = await uow.cases.by_origin(origin) if key else None
        if existing is not None:
            seen = await uow.session.get(ApiIdempotency, f"cases:{key}")
            if seen is None or seen.fingerprint != fingerprint:
                return json_error(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different case.",
                )
            document = await document_of(uow, existing, events=True)
            return json_response(document, status=201, headers={"Idempotent-Replayed": "true"})
        command = submit_command(
            filing, parts.office, parts.deadlines, origin=origin, source=extra["source"]
        )
        if extra["mailbox"]:
            command = letter(command, parts.office, extra["mailbox"])
        case = await file_for_citizen(uow, parts.deadlines, command, CHANNEL, extra["department"])
        if key:
            # event_seq 1: the key made the case's first step, `submitted`.
            uow.session.add(
                ApiIdempotency(key=f"cases:{key}", fingerprint=fingerprint, event_seq=1)
            )
        await uow.flush()
        document = await document_of(uow, case, events=True)
        await uow.commit()
    return json_response(document, status=201)


def read_filing(body: dict[str, Any], office: OfficeConfig) -> tuple[Filing, dict[str, str]]:
    """The filing and its routing (`source`, `department`), or `Invalid` naming every wrong
    field of the body at once."""
    errors = {name: "not a field of this request" for name in sorted(set(body) - FIELDS)}
    text = _Texts(body, errors)
    location = text.object("location")
    contact = text.object("contact")
    answers = text.object("answers")
    anonymous = body.get("anonymous", False)
    if not isinstance(anonymous, bool):
        errors["anonymous"] = "must be true or false"
        anonymous = False
    raw = RawFiling(
        kind=text.get("kind") or "petition",
        category=text.get("category"),
        description=text.get("description"),
        location_text=text.get("text", location, "location.text"),
        lat=text.number("lat", location, "location.lat"),
        lng=text.number("lng", location, "location.lng"),
        name=text.get("name", contact, "contact.name"),
        phone=text.get("phone", contact, "contact.phone"),
        anonymous=anonymous,
        answers={name: text.get(name, answers, f"answers.{name}") for name in answers},
        language=text.get("language") or "zh",
    )
    if raw.language not in ("zh", "en"):
        errors["language"] = "must be zh or en"
    source = text.get("source")
    if not SOURCE.fullmatch(source):
        errors["source"] = (
            "required: who files, as kind:id — e.g. grid:07, kiosk:lobby-1, staff:wangfang"
        )
    extra = {"source": source}
    for name, limit in TEXT_LIMITS.items():
        extra[name] = text.get(name).strip()
        if len(extra[name]) > limit:
            errors[name] = f"at most {limit} characters"
    try:
        extra["department"] = office.departments.resolve(extra["department"])
    except UnknownDepartment as exc:
        errors["department"] = str(exc)
    if extra["mailbox"]:
        # A letter to a leader's mailbox (领导信箱), by its key or its name.
        box = next((m for m in office.mailboxes if extra["mailbox"] in (m.key, m.name)), None)
        if box is None:
            errors["mailbox"] = "not a mailbox of this office: " + ", ".join(
                f"{m.key} ({m.name})" for m in office.mailboxes
            )
        else:
            extra["mailbox"] = box.key
    checked = check_filing(office, raw)
    if isinstance(checked, dict):
        errors.update(_nested(checked))
    if errors:
        raise Invalid(errors)
    assert isinstance(checked, Filing)
    return checked, extra


def _nested(errors: dict[str, str]) -> dict[str, str]:
    """The checker's field names as this body names them."""
    names = {"name": "contact.name", "phone": "contact.phone"}
    return {names.get(name, name): why for name, why in errors.items()}


class _Texts:
    """Reads typed values out of the body, noting each one of the wrong type."""

    def __init__(self, body: dict[str, Any], errors: dict[str, str]) -> None:
        self.body, self.errors = body, errors

    def object(self, name: str) -> dict[str, Any]:
        value = self.body.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.errors[name] = "must be an object"
            return {}
        return value

    def get(self, name: str, within: dict[str, Any] | None = None, path: str = "") -> str:
        value = (self.body if within is None else within).get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.errors[path or name] = "must be a string"
            return ""
        return value

    def number(self, name: str, within: dict[str, Any], path: str) -> float | None:
        value = within.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.errors[path] = "must be a number"
            return None
        return float(value)
