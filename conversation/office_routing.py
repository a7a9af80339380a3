"""The office file's case work: `[[departments]]`, `[escalation]` levels and `[[mailboxes]]`."""

from __future__ import annotations

import re
from typing import Any

from .cases.escalation import HANDLING, EscalationRules, Level
from .cases.repeats import RepeatRules
from .cases.routing import Department, Departments, Mailbox
from .office_text import OfficeConfigError

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
MAX_LEVELS = 5
TARGET = re.compile(rf"{HANDLING}|role:(staff|leader|admin)|[A-Za-z0-9_.-]{{1,64}}")


def parse_departments(raw: Any, category_defaults: dict[str, str]) -> Departments:
    if not isinstance(raw, list):
        raise OfficeConfigError("departments must be a list of [[departments]] tables")
    units: list[Department] = []
    for i, item in enumerate(raw):
        where = f"departments[{i}]"
        if not isinstance(item, dict):
            raise OfficeConfigError(f'{where} must be a table like {{ code = "zjj", name = "…" }}')
        code, name = item.get("code"), item.get("name")
        if not isinstance(code, str) or not CODE.fullmatch(code):
            raise OfficeConfigError(
                f"{where}.code must be 1-40 letters, digits, '_', '.' or '-' (e.g. \"zjj\")"
            )
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise OfficeConfigError(f"{where}.name must be the department's name (1-100 chars)")
        parent = item.get("parent", "")
        if not isinstance(parent, str):
            raise OfficeConfigError(f"{where}.parent must be the code of another department")
        keywords = item.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise OfficeConfigError(f"{where}.keywords must be a list of words")
        units.append(Department(code, name.strip(), parent, tuple(keywords)))
    codes = [u.code for u in units]
    names = [u.name for u in units]
    if len(set(codes)) != len(codes) or len(set(names)) != len(names):
        raise OfficeConfigError("departments: two share one code or one name")
    for unit in units:
        if unit.parent and unit.parent not in codes:
            raise OfficeConfigError(
                f"departments: {unit.code}.parent = {unit.parent!r} is not a declared code"
            )
    parents = {u.code: u.parent for u in units}
    for unit in units:
        seen, code = set(), unit.parent
        while code and code not in seen:
            if code == unit.code:
                raise OfficeConfigError(f"departments: {unit.code} is its own ancestor (a loop)")
            seen.add(code)
            code = parents.get(code, "")
    tree = Departments(tuple(units), dict(category_defaults))
    for category, code in category_defaults.items():
        if code not in codes:
            raise OfficeConfigError(
                f"categories: {category}.department = {code!r} is not a declared department"
            )
    return tree


def parse_escalation(raw: Any) -> EscalationRules:
    if not isinstance(raw, dict):
        raise OfficeConfigError("escalation must be a table")
    urge_limit = raw.get("urge_limit", 2)
    if isinstance(urge_limit, bool) or not isinstance(urge_limit, int) or not 0 <= urge_limit <= 20:
        raise OfficeConfigError("escalation.urge_limit must be a whole number from 0 to 20")
    levels = []
    items = raw.get("levels", [])
    if not isinstance(items, list) or len(items) > MAX_LEVELS:
        raise OfficeConfigError(f"escalation.levels must be a list of at most {MAX_LEVELS}")
    for i, item in enumerate(items):
        where = f"escalation.levels[{i}]"
        if not isinstance(item, dict):
            raise OfficeConfigError(f'{where} must be a table like {{ name = "…", targets = [] }}')
        name, targets = item.get("name"), item.get("targets", [])
        if not isinstance(name, str) or not name.strip():
            raise OfficeConfigError(f"{where}.name is missing")
        if (
            not isinstance(targets, list)
            or not targets
            or not all(isinstance(t, str) and TARGET.fullmatch(t) for t in targets)
        ):
            raise OfficeConfigError(
                f"{where}.targets must list staff usernames, role:leader or {HANDLING!r}"
            )
        levels.append(Level(i + 1, name.strip(), tuple(targets)))
    return EscalationRules(tuple(levels), urge_limit)


def parse_mailboxes(raw: Any, departments: Departments) -> tuple[Mailbox, ...]:
    if not isinstance(raw, list):
        raise OfficeConfigError("mailboxes must be a list of [[mailboxes]] tables")
    boxes = []
    for i, item in enumerate(raw):
        where = f"mailboxes[{i}]"
        if not isinstance(item, dict):
            raise OfficeConfigError(f"{where} must be a table")
        key, name, leader = item.get("key"), item.get("name"), item.get("leader")
        readers, department = item.get("readers"), item.get("department", "")
        if not isinstance(key, str) or not CODE.fullmatch(key):
            raise OfficeConfigError(f'{where}.key must be 1-40 letters or digits (e.g. "mayor")')
        for field, value in (("name", name), ("leader", leader)):
            if not isinstance(value, str) or not value.strip():
                raise OfficeConfigError(f"{where}.{field} is missing")
        if (
            not isinstance(readers, list)
            or not readers
            or not all(isinstance(r, str) and r for r in readers)
        ):
            raise OfficeConfigError(f"{where}.readers must list the staff usernames who read it")
        if not isinstance(department, str) or (
            department and departments.declared and departments.get(department) is None
        ):
            raise OfficeConfigError(f"{where}.department is not a declared department code")
        assert isinstance(name, str) and isinstance(leader, str)
        boxes.append(Mailbox(key, name.strip(), leader.strip(), tuple(readers), department))
    if len({b.key for b in boxes}) != len(boxes):
        raise OfficeConfigError("mailboxes: two share one key")
    return tuple(boxes)


def parse_repeats(raw: Any) -> RepeatRules:
    if not isinstance(raw, dict):
        raise OfficeConfigError("repeats must be a table")
    window, similar, raise_at = (
        raw.get("window_days", 180),
        raw.get("similar_at", 44),
        raw.get("raise_at", 3),
    )
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 3650:
        raise OfficeConfigError("repeats.window_days must be a whole number of days (1-3650)")
    if isinstance(similar, bool) or not isinstance(similar, int | float) or not 0 < similar <= 100:
        raise OfficeConfigError("repeats.similar_at must be a similarity from 1 to 100")
    if isinstance(raise_at, bool) or not isinstance(raise_at, int) or not 2 <= raise_at <= 20:
        raise OfficeConfigError("repeats.raise_at must be the filing that is raised (2-20)")
    duplicate = raw.get("duplicate_at", 60)
    if (
        isinstance(duplicate, bool)
        or not isinstance(duplicate, int | float)
        or not 0 < duplicate <= 100
    ):
        raise OfficeConfigError("repeats.duplicate_at must be a similarity from 1 to 100")
    return RepeatRules(window, float(similar), raise_at, float(duplicate))
