"""Who may see and do what on the desk, decided in one place for every request.

One SQL condition says which cases a staff member may see; the list is filtered by it and a
single case is fetched through it, so a case outside someone's scope is never read for them
(zammad's policy scope). A person scoped to a department sees the cases it leads (主办) or
co-handles (协办), and the letters of any leader's mailbox they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, true

from conversation.cases.routing import Mailbox
from storage.models import Case, StaffAccount
from storage.routing import handled_by

# Who may take which steps: staff walk the lifecycle and record a suggestion's outcome;
# leaders read everything, add notes and give 批示; administrators manage accounts and read.
STEPS_BY_ROLE: dict[str, frozenset[str]] = {
    "staff": frozenset(
        {
            "accepted",
            "redirected",
            "assigned",
            "returned",
            "replied",
            "closed",
            "extended",
            "note",
            "adopted",
        }
    ),
    "leader": frozenset({"note", "instructed"}),
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
    mailboxes: tuple[str, ...] = ()  # the keys of the leaders' mailboxes this person reads

    @classmethod
    def of(cls, account: StaffAccount, mailboxes: Iterable[Mailbox] = ()) -> Staff:
        reads = tuple(m.key for m in mailboxes if account.username in m.readers)
        return cls(
            account.id,
            account.username,
            account.display_name,
            account.role,
            account.department,
            reads,
        )

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


def scope(staff: Staff) -> str | None:
    """What `visible_cases` depends on, as a key (None: every case): people with one scope see
    the same cases, so a check made for one holds for the others."""
    if staff.role == "staff" and staff.department:
        return f"department:{staff.department} mailboxes:{','.join(sorted(staff.mailboxes))}"
    return None


def visible_cases(staff: Staff) -> ColumnElement[bool]:
    """The cases this person may see and act on, as a WHERE condition (keep `scope` in step)."""
    if staff.role == "staff" and staff.department:
        if staff.mailboxes:
            return or_(handled_by(staff.department), Case.mailbox.in_(staff.mailboxes))
        return handled_by(staff.department)
    return true()


def may_take(staff: Staff, step: str) -> bool:
    return step in STEPS_BY_ROLE.get(staff.role, frozenset())
