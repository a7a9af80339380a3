"""Who may see and do what on the desk, decided in one place for every request.

One SQL condition says which cases a staff member may see; the list is filtered by it and a
single case is fetched through it, so a case outside someone's scope is never read for them
(zammad's policy scope). Today a department is a free-text string on the case; when the
department tree and co-handling come, this module is what grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, true

from storage.models import Case, StaffAccount

# Who may take which steps: staff walk the lifecycle; leaders read everything and add notes
# (their 批示 comes later); administrators manage accounts and read.
STEPS_BY_ROLE: dict[str, frozenset[str]] = {
    "staff": frozenset(
        {"accepted", "redirected", "assigned", "returned", "replied", "closed", "extended", "note"}
    ),
    "leader": frozenset({"note"}),
    "admin": frozenset(),
}


@dataclass(frozen=True)
class Staff:
    """The signed-in person, as the desk needs them (not the ORM row)."""

    id: int
    username: str
    display_name: str
    role: str
    department: str

    @classmethod
    def of(cls, account: StaffAccount) -> Staff:
        return cls(
            account.id, account.username, account.display_name, account.role, account.department
        )

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


def scope(staff: Staff) -> str | None:
    """What `visible_cases` depends on, as a key (None: every case): people with one scope see
    the same cases, so a check made for one holds for the others."""
    if staff.role == "staff" and staff.department:
        return f"department:{staff.department}"
    return None


def visible_cases(staff: Staff) -> ColumnElement[bool]:
    """The cases this person may see and act on, as a WHERE condition (keep `scope` in step)."""
    if staff.role == "staff" and staff.department:
        return Case.department == staff.department
    return true()


def may_take(staff: Staff, step: str) -> bool:
    return step in STEPS_BY_ROLE.get(staff.role, frozenset())
