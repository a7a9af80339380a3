"""POST requests: a partner platform files a service request (form-encoded), checked like the
chat's form and filed like the chat's submit; GET tokens finds the case a token filed."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Sequence
from datetime import tzinfo
from urllib.parse import parse_qsl

from bot.api.filing_form import Filing, RawFiling, check_filing, submit_command
from conversation.cases.deadlines import LegalDeadlines
from conversation.messages import Media
from conversation.office import OfficeConfig
from storage.filing import file_for_citizen
from storage.models import Case
from storage.uow import UnitOfWork

CHANNEL = "open311"
MAX_FIELDS = 100
MAX_MEDIA = 9
TOKEN = re.compile(r"[0-9a-f]{32}")
_CJK = re.compile(r"[\u3400-\u9fff]")
LOCATION_REQUIRED = "lat and long, or address_string"
# The checker's names for what went wrong, as the spec names the fields.
FIELD_NAMES = {
    "category": "service_code",
    "location": LOCATION_REQUIRED,
    "name": "first_name/last_name",
    "contact": "first_name/last_name/phone",
}

ALREADY_SAID = {"category": {"service_code"}, "location": {"lat", "long", LOCATION_REQUIRED}}


class BadRequest(Exception):
    """400: what is wrong, one description per field."""

    def __init__(self, descriptions: list[str]) -> None:
        super().__init__("; ".join(descriptions))
        self.descriptions = descriptions


def read_form(body: bytes) -> dict[str, list[str]]:
    """The form-encoded body as name → values, or BadRequest."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest(["the body must be UTF-8"]) from None
    except ValueError:
        raise BadRequest([f"at most {MAX_FIELDS} fields"]) from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def partner(keys: Sequence[str], given: str) -> str | None:
    """Which partner's key this is (a short fingerprint, safe to store), or None. Every key
    is compared, in constant time, so the answer's timing tells nothing about any of them."""
    found = None
    for key in keys:
        if hmac.compare_digest(key.encode(), given.encode()):
            found = key
    return hashlib.sha256(found.encode()).hexdigest()[:8] if found is not None else None


def read_filing(
    fields: dict[str, list[str]], office: OfficeConfig
) -> tuple[Filing, tuple[Media, ...]]:
    """The spec's fields as a filing, or BadRequest naming each wrong one."""

    def one(name: str) -> str:
        return (fields.get(name) or [""])[0].strip()

    problems: list[str] = []
    code = one("service_code")
    if not code:
        problems.append("service_code: required")
    elif (category := office.category(code)) is None or not category.open311:
        problems.append(f"service_code: no service {code!r} (see services.json)")
    lat, lng = _coordinate(one("lat"), "lat", problems), _coordinate(one("long"), "long", problems)
    if not (one("lat") or one("long") or one("address_string")):
        problems.append(f"{LOCATION_REQUIRED}: required")
    said = {problem.split(":")[0] for problem in problems}
    name = _full_name(one("first_name"), one("last_name"))
    phone = one("phone")
    answers = {
        match.group(1): values[0]
        for field, values in fields.items()
        if (match := re.fullmatch(r"attribute\[(.+)\]", field))
    }
    media = _media(fields.get("media_url", []), problems)
    raw = RawFiling(
        category=code,
        description=one("description"),
        location_text=one("address_string"),
        lat=lat,
        lng=lng,
        name=name,
        phone=phone,
        # Partner platforms often know no one: without a name or a number it is anonymous.
        anonymous=not name and not phone,
        answers=answers,
    )
    checked = check_filing(office, raw)
    if isinstance(checked, dict):
        for field, why in checked.items():
            if said & ALREADY_SAID.get(field, set()):
                continue  # the spec's own wording of the same problem is there
            if field.startswith("answers."):
                field = f"attribute[{field.removeprefix('answers.')}]"
            problems.append(f"{FIELD_NAMES.get(field, field)}: {why}")
    if problems:
        raise BadRequest(problems)
    assert isinstance(checked, Filing)
    return checked, media


async def file_request(
    uow: UnitOfWork,
    filing: Filing,
    media: tuple[Media, ...],
    office: OfficeConfig,
    deadlines: LegalDeadlines,
    source: str,
) -> tuple[Case, str]:
    """File it; the case and the token that finds it again (GET tokens/{token})."""
    token = uuid.uuid4().hex
    command = submit_command(
        filing, office, deadlines, origin=f"{CHANNEL}:{token}", source=source, attachments=media
    )
    case = await file_for_citizen(uow, deadlines, command, CHANNEL, "")
    return case, token


async def by_token(uow: UnitOfWork, token: str) -> Case | None:
    if not TOKEN.fullmatch(token):
        return None
    return await uow.cases.by_origin(f"{CHANNEL}:{token}")


def service_notice(case: Case, office: OfficeConfig, tz: tzinfo) -> str:
    """What the citizen is told on filing: the code and when acceptance is decided."""
    if case.accept_due_at is None:
        return office.catalog.text("zh", "notify.receipt.suggestion", code=case.code)
    due = case.accept_due_at.astimezone(tz)
    return office.catalog.text(
        "zh", "notify.receipt", code=case.code, due=f"{due.year}年{due.month}月{due.day}日"
    )


def _coordinate(value: str, name: str, problems: list[str]) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        problems.append(f"{name}: must be a number")
        return None


def _full_name(first: str, last: str) -> str:
    # 姓 then 名 for Chinese names (last_name 李, first_name 四 → 李四); given name first otherwise.
    if _CJK.search(first + last):
        return f"{last}{first}"
    return " ".join(part for part in (first, last) if part)


def _media(urls: list[str], problems: list[str]) -> tuple[Media, ...]:
    media = []
    for url in urls[:MAX_MEDIA]:
        url = url.strip()
        if not url:
            continue
        if not re.fullmatch(r"https?://\S{1,1000}", url):
            problems.append("media_url: must be an http or https URL")
            continue
        media.append(Media("image", url[:512], url))
    return tuple(media)
