"""The desk's case list: filters, search by code or mobile (through the keyed hash), keyset pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.codes import CASE_CODE_RE
from conversation.validators import phone as parse_phone
from storage.crypto import PiiCipher
from storage.models import Case, Citizen
from storage.routing import handled_by

PAGE = 50
WORKING = ("accepted", "assigned", "returned", "review_requested")
CODE_PART_RE = re.compile(r"[0-9A-Z-]{4,18}")
MATCHES = 1000  # cases a part of a code may match; four characters match a handful


class BadSearch(ValueError):
    """The search text is neither a case code (or part of one) nor a mobile number."""


@dataclass(frozen=True)
class CaseFilter:
    status: str = ""
    department: str = ""
    category: str = ""
    channel: str = ""
    overdue: bool = False
    search: str = ""
    before: int = 0  # keyset cursor: only cases with a smaller id (the list is newest first)

    @classmethod
    def from_query(cls, query: Any) -> CaseFilter:
        before = query.get("before", "")
        return cls(
            status=query.get("status", "")[:24],
            department=query.get("department", "")[:100],
            category=query.get("category", "")[:40],
            channel=query.get("channel", "")[:20],
            overdue=query.get("overdue", "") == "1",
            search=query.get("q", "").strip()[:40],
            before=int(before) if before.isdigit() and len(before) < 19 else 0,
        )

    def query_string(self, **change: Any) -> dict[str, str]:
        """The filter as URL parameters (for the next page), empty ones left out."""
        values = {
            "status": self.status,
            "department": self.department,
            "category": self.category,
            "channel": self.channel,
            "overdue": "1" if self.overdue else "",
            "q": self.search,
            **{k: str(v) for k, v in change.items()},
        }
        return {k: v for k, v in values.items() if v}


def overdue(now: datetime) -> ColumnElement[bool]:
    """Cases whose open legal deadline has passed: acceptance, or completion (and review decision)."""
    return or_(
        and_(Case.status == "submitted", Case.accept_due_at < now),
        and_(Case.status.in_(WORKING), Case.finish_due_at < now),
    )


async def search_condition(
    session: AsyncSession, text: str, cipher: PiiCipher
) -> ColumnElement[bool]:
    compact = re.sub(r"[\s-]", "", text)
    if re.fullmatch(r"\+\d{6,15}|\d{11,15}", compact):
        phone = parse_phone(compact)
        if not isinstance(phone, str):
            raise BadSearch(text)
        # The mobile is never decrypted to search: its keyed hash finds the citizen.
        citizens = select(Citizen.id).where(Citizen.phone_hash == cipher.phone_hash(phone))
        return Case.citizen_id.in_(citizens.scalar_subquery())
    code = text.upper()
    if CASE_CODE_RE.fullmatch(code):
        return Case.code == code
    if CODE_PART_RE.fullmatch(code):
        # The matching ids first, read from the (code, id) index alone (far smaller than the
        # table); as a subquery the planner would rather walk the whole table newest first.
        part = select(Case.id).where(Case.code.contains(code, autoescape=True)).limit(MATCHES)
        return Case.id.in_(list(await session.scalars(part)))
    raise BadSearch(text)


async def find_cases(
    session: AsyncSession,
    scope: ColumnElement[bool],
    wanted: CaseFilter,
    cipher: PiiCipher,
    now: datetime,
    limit: int = PAGE,
) -> tuple[list[Case], int | None]:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    query = select(Case).where(scope).order_by(Case.id.desc()).limit(limit + 1)
    for column, value in (
        (Case.status, wanted.status),
        (Case.category, wanted.category),
        (Case.channel, wanted.channel),
    ):
        if value:
            query = query.where(column == value)
    if wanted.department:  # as the API's ?department=: the cases it leads or co-handles
        query = query.where(handled_by(wanted.department))
    if wanted.overdue:
        query = query.where(overdue(now))
    if wanted.search:
        query = query.where(await search_condition(session, wanted.search, cipher))
    if wanted.before:
        query = query.where(Case.id < wanted.before)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)
