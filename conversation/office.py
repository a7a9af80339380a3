"""The office's own configuration: categories, forms as data, common questions, staff hours."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

from .cases.escalation import EscalationRules
from .cases.repeats import RepeatRules
from .cases.routing import Departments, Mailbox
from .cases.stages import (
    MAX_STAGE_DAYS,
    MAX_STAGE_HOURS,
    STAGE_ANCHORS,
    DeadlineRules,
    SlaStage,
)
from .catalog import Catalog
from .office_forms import FormSpec, parse_forms
from .office_routing import parse_departments, parse_escalation, parse_mailboxes, parse_repeats
from .office_text import LocalText, OfficeConfigError
from .office_text import local_text as _text
from .places import Gazetteer


@dataclass(frozen=True)
class Category:
    key: str
    label: LocalText
    keywords: tuple[str, ...] = ()
    notice: str = ""
    # Offered to other systems through Open311, whose reads need no key: off for matters that
    # must not reach the people they are about (reports on officials' conduct).
    open311: bool = True
    department: str = ""  # the department its cases go to unless the desk says otherwise


@dataclass(frozen=True)
class FaqEntry:
    question: LocalText
    answer: LocalText
    keywords: tuple[str, ...] = ()
    # Other ways citizens ask it, for matching typed questions (conversation/faq_match.py).
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaffHours:
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    spans: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13, 30), time(17, 30)))
    text: LocalText = LocalText("工作日 9:00-12:00、13:30-17:30")
    # 常用语: what staff say often, one press away on the desk.
    canned: tuple[str, ...] = ()

    def open_at(self, local: datetime) -> bool:
        if local.isoweekday() not in self.weekdays:
            return False
        now = local.time()
        return any(start <= now < end for start, end in self.spans)


@dataclass(frozen=True)
class OfficeConfig:
    name: LocalText
    categories: tuple[Category, ...]
    forms: dict[str, FormSpec]
    faq: tuple[FaqEntry, ...] = ()
    staff: StaffHours = field(default_factory=StaffHours)
    risk_keywords: tuple[str, ...] = ()
    resume_after_minutes: int = 30
    # 催办: a citizen may urge one case at most once in this many hours.
    urge_every_hours: int = 72
    # Where citizens file and follow outside SMS, as an SMS answer names them (docs/sms.md).
    hotline: str = "12345"
    online: LocalText = field(
        default_factory=lambda: LocalText(
            "微信公众号或网上信访页面", "our WeChat account or web page"
        )
    )
    deadlines: DeadlineRules = field(default_factory=DeadlineRules)
    catalog: Catalog = field(default_factory=Catalog)
    departments: Departments = field(default_factory=Departments)
    escalation: EscalationRules = field(default_factory=EscalationRules)
    mailboxes: tuple[Mailbox, ...] = ()
    repeats: RepeatRules = field(default_factory=RepeatRules)
    # The office's own streets, roads, communities and landmarks (地名库, `[places]`).
    places: Gazetteer = field(default_factory=Gazetteer)

    def mailbox(self, key: str) -> Mailbox | None:
        return next((m for m in self.mailboxes if m.key == key), None)

    def route(self, category: str, text: str) -> str:
        """The department a new case starts with (a suggestion the desk may change)."""
        return self.departments.suggest(category, text)

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.key == key), None)

    def suggest_category(self, text: str) -> Category | None:
        """The category whose keywords the text hits most often (ties: first listed)."""
        best, best_hits = None, 0
        for category in self.categories:
            hits = sum(1 for word in category.keywords if word and word in text)
            if hits > best_hits:
                best, best_hits = category, hits
        return best

    def risk_words_in(self, text: str) -> list[str]:
        return [word for word in self.risk_keywords if word and word in text]


def load_office(path: str | Path | None = None) -> OfficeConfig:
    """Read an office file (the bundled default when `path` is None) and check every key."""
    if path is None:
        raw = resources.files("conversation").joinpath("office.toml").read_text("utf-8")
        where = "the bundled office.toml"
    else:
        where = str(path)
        try:
            raw = Path(path).read_text("utf-8")
        except OSError as exc:
            raise OfficeConfigError(
                f"{where}: cannot read the office file ({exc.strerror})"
            ) from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise OfficeConfigError(f"{where}: not valid TOML ({exc})") from exc
    try:
        return _parse(data)
    except OfficeConfigError as exc:
        raise OfficeConfigError(f"{where}: {exc}") from None


def _parse(data: dict[str, Any]) -> OfficeConfig:
    # `ask.name = "…"` in TOML is a nested table; flatten it back to the catalog's dotted keys.
    texts = {lang: _flatten(entries) for lang, entries in data.get("texts", {}).items()}
    try:
        catalog = Catalog(texts)
    except ValueError as exc:
        raise OfficeConfigError(str(exc)) from None

    categories = []
    for i, item in enumerate(data.get("categories", [])):
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise OfficeConfigError(f"categories[{i}].key is missing")
        notice = item.get("notice", "")
        if notice:
            try:
                catalog.text("zh", notice)
            except KeyError:
                raise OfficeConfigError(
                    f"categories[{i}].notice names unknown text {notice!r}"
                ) from None
        categories.append(
            Category(
                key=key,
                label=_text(item.get("label"), f"categories[{i}].label"),
                keywords=tuple(str(k) for k in item.get("keywords", [])),
                notice=notice,
                open311=_flag(item.get("open311", True), f"categories[{i}].open311"),
                department=str(item.get("department", "")),
            )
        )
    if not categories:
        raise OfficeConfigError("at least one [[categories]] entry is needed")
    if len({c.key for c in categories}) != len(categories):
        raise OfficeConfigError("categories: two entries share one key")

    forms = parse_forms(data.get("forms", {}))
    departments = parse_departments(
        data.get("departments", []), {c.key: c.department for c in categories if c.department}
    )

    faq = tuple(
        FaqEntry(
            question=_text(item.get("question"), f"faq[{i}].question"),
            answer=_text(item.get("answer"), f"faq[{i}].answer"),
            keywords=tuple(str(k) for k in item.get("keywords", [])),
            examples=tuple(str(e) for e in item.get("examples", [])),
        )
        for i, item in enumerate(data.get("faq", []))
    )

    staff_data = data.get("staff", {})
    staff = StaffHours(
        weekdays=tuple(int(d) for d in staff_data.get("weekdays", (1, 2, 3, 4, 5))),
        spans=tuple(_span(s) for s in staff_data.get("hours", ("09:00-12:00", "13:30-17:30"))),
        text=_text(
            staff_data.get("hours_text", "工作日 9:00-12:00、13:30-17:30"), "staff.hours_text"
        ),
        canned=_canned(staff_data.get("canned_replies", [])),
    )
    return OfficeConfig(
        name=_text(data.get("name", "网上信访服务"), "name"),
        categories=tuple(categories),
        forms=forms,
        faq=faq,
        staff=staff,
        risk_keywords=tuple(str(k) for k in data.get("risk", {}).get("keywords", [])),
        resume_after_minutes=int(data.get("resume_after_minutes", 30)),
        urge_every_hours=_positive(data.get("urge_every_hours", 72), "urge_every_hours"),
        hotline=_hotline(data.get("hotline", "12345")),
        online=_text(
            data.get(
                "online", {"zh": "微信公众号或网上信访页面", "en": "our WeChat account or web page"}
            ),
            "online",
        ),
        deadlines=_parse_deadlines(data.get("deadlines", {})),
        catalog=catalog,
        departments=departments,
        escalation=parse_escalation(data.get("escalation", {})),
        mailboxes=parse_mailboxes(data.get("mailboxes", []), departments),
        repeats=parse_repeats(data.get("repeats", {})),
        places=_parse_places(data.get("places", {})),
    )


def _hotline(raw: Any) -> str:
    text = str(raw).strip()
    if not text or len(text) > 30:
        raise OfficeConfigError('hotline must be a telephone number, e.g. hotline = "12345"')
    return text


def _parse_places(raw: Any) -> Gazetteer:
    if not isinstance(raw, dict):
        raise OfficeConfigError("places must be a table: [places] with areas, roads, …")
    kinds = ("areas", "roads", "communities", "landmarks")
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        raise OfficeConfigError(f"places.{unknown[0]} is unknown: use {', '.join(kinds)}")
    lists: dict[str, tuple[str, ...]] = {}
    for kind in kinds:
        names = raw.get(kind, [])
        if not isinstance(names, list) or not all(
            isinstance(n, str) and 2 <= len(n.strip()) <= 40 for n in names
        ):
            raise OfficeConfigError(f"places.{kind} must be a list of names of 2-40 characters")
        lists[kind] = tuple(n.strip() for n in names)
    return Gazetteer(**lists)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise OfficeConfigError(f"{where} must be true or false")
    return value


def _canned(replies: Any) -> tuple[str, ...]:
    if not isinstance(replies, list) or not all(
        isinstance(r, str) and 0 < len(r.strip()) <= 500 for r in replies
    ):
        raise OfficeConfigError(
            "staff.canned_replies must be a list of sentences of 1-500 characters"
        )
    return tuple(r.strip() for r in replies)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _parse_deadlines(data: dict[str, Any]) -> DeadlineRules:
    stages = [
        _parse_stage(raw, f"deadlines.stages[{i}]") for i, raw in enumerate(data.get("stages", []))
    ]
    if len({s.name for s in stages}) != len(stages):
        raise OfficeConfigError("deadlines.stages: two stages share one name")
    warn = data.get("warn_before_hours", 48)
    if not isinstance(warn, int) or not 0 <= warn <= 24 * 30:
        raise OfficeConfigError(
            "deadlines.warn_before_hours must be a whole number of hours (0-720)"
        )
    return DeadlineRules(
        warn_before_hours=warn,
        stages=tuple(stages),
        holidays=frozenset(_day(d, "deadlines.holidays") for d in data.get("holidays", [])),
        workdays=frozenset(_day(d, "deadlines.workdays") for d in data.get("workdays", [])),
    )


def _parse_stage(raw: Any, where: str) -> SlaStage:
    """One local stage: `name`, `days` (0 = the same day) or `hours`, `working_days`, `from`."""
    if not isinstance(raw, dict):
        raise OfficeConfigError(
            f'{where} must be a table such as {{ name = "联系群众", days = 1 }}'
        )
    name, days, hours = raw.get("name"), raw.get("days"), raw.get("hours")
    if not isinstance(name, str) or not name:
        raise OfficeConfigError(f"{where}.name is missing")
    if (days is None) == (hours is None):
        raise OfficeConfigError(f"{where} needs either days or hours (one of them)")
    if hours is not None:
        if not _whole(hours) or not 1 <= hours <= MAX_STAGE_HOURS:
            raise OfficeConfigError(
                f"{where}.hours must be a whole number of hours from 1 to {MAX_STAGE_HOURS}"
            )
        if "working_days" in raw:
            raise OfficeConfigError(
                f"{where}.working_days applies to days only: hours run on the clock"
            )
    elif not _whole(days) or not 0 <= days <= MAX_STAGE_DAYS:
        raise OfficeConfigError(
            f"{where}.days must be a whole number of days from 0 (the same day) to {MAX_STAGE_DAYS}"
        )
    anchor = raw.get("from", "assigned")
    if anchor not in STAGE_ANCHORS:
        raise OfficeConfigError(
            f"{where}.from = {anchor!r} cannot start a stage: a stage counts from when the case "
            f"is {', '.join(STAGE_ANCHORS[:-1])} or {STAGE_ANCHORS[-1]}, and ends at the reply"
        )
    return SlaStage(
        name,
        days=days or 0,
        working_days=bool(raw.get("working_days", True)),
        anchor=anchor,
        hours=hours or 0,
    )


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _day(value: Any, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise OfficeConfigError(f"{key}: {value!r} must be a date like 2026-10-01") from None


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise OfficeConfigError(
            f'staff.hours entry {text!r} must look like "09:00-12:00"'
        ) from None
    return start, end


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OfficeConfigError(f"{where} must be a whole number of 1 or more")
    return value
