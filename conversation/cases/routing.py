"""Where a case goes: the office's departments (区 → 部门/街道), the default one per category,
and leaders' mailboxes (领导信箱) with the staff who read them.

A department is named on a case by its code; people read its name. The tree is the office
file's (`[[departments]]`); with none declared, departments stay free text as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .progress import InvalidProgress, Progress


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    parent: str = ""  # the code of the unit above it; "" for the top (the district itself)
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mailbox:
    """A leader's mailbox (书记信箱, 区长信箱): a letter to it is a case its readers see."""

    key: str
    name: str
    leader: str
    readers: tuple[str, ...]  # staff usernames
    department: str = ""  # the department that handles its letters once read ("" = none yet)


class UnknownDepartment(ValueError):
    """A department the office file does not declare."""


@dataclass(frozen=True)
class Departments:
    """The office's department tree and per-category defaults (category key → code)."""

    units: tuple[Department, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def declared(self) -> bool:
        return bool(self.units)

    def get(self, code: str) -> Department | None:
        return next((d for d in self.units if d.code == code), None)

    def name(self, code: str) -> str:
        """What people read for a code: the declared name, or the text itself (free text)."""
        found = self.get(code)
        return found.name if found else code

    def resolve(self, given: str) -> str:
        """The code for a code or a declared name; free text passes when nothing is declared."""
        given = given.strip()
        if not self.declared or not given:
            return given
        for unit in self.units:
            if given in (unit.code, unit.name):
                return unit.code
        raise UnknownDepartment(
            f"Unknown department {given!r}; the office declares: "
            + ", ".join(f"{d.code} ({d.name})" for d in self.units)
            + "."
        )

    def resolve_all(self, given: Iterable[str]) -> tuple[str, ...]:
        codes: list[str] = []
        for item in given:
            code = self.resolve(item)
            if code and code not in codes:
                codes.append(code)
        return tuple(codes)

    def path(self, code: str) -> tuple[Department, ...]:
        """From the top of the tree down to `code` (empty when unknown)."""
        chain: list[Department] = []
        current = self.get(code)
        while current is not None and current not in chain:
            chain.insert(0, current)
            current = self.get(current.parent) if current.parent else None
        return tuple(chain)

    def level(self, code: str) -> int:
        """How deep a unit sits: 1 for the top of the tree, 0 for a code not declared."""
        return len(self.path(code))

    def subtrees(self) -> dict[str, frozenset[str]]:
        """Each unit with units below it, and the codes of its whole subtree (itself too)."""
        below: dict[str, set[str]] = {}
        for unit in self.units:
            for above in self.path(unit.code):
                below.setdefault(above.code, set()).add(unit.code)
        return {code: frozenset(codes) for code, codes in below.items() if len(codes) > 1}

    def suggest(self, category: str, text: str) -> str:
        """The department a new case is routed to until the desk says otherwise (智能分派):
        a department whose own keywords the text hits most, else the category's default."""
        best, best_hits = "", 0
        for unit in self.units:
            hits = sum(1 for word in unit.keywords if word and word in text)
            if hits > best_hits:
                best, best_hits = unit.code, hits
        return best or self.defaults.get(category, "")


def routed(step: Progress, departments: Departments) -> Progress:
    """An assignment's departments as codes of the office's tree (names are accepted too), the
    lead one not repeated among the co-handling ones; `InvalidProgress` names an unknown one."""
    if step.type != "assigned":
        return step
    try:
        lead = departments.resolve(step.department)
        co = departments.resolve_all(step.co_departments)
    except UnknownDepartment as exc:
        raise InvalidProgress(str(exc)) from None
    return replace(step, department=lead, co_departments=tuple(c for c in co if c != lead))
