"""The desk's one door to the case lifecycle: every step a person takes goes through here.

The lifecycle (its table and `record_progress`) is moving out of bot/backoffice; re-point the
imports below and nothing else in the desk changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.backoffice.deadlines import MAX_EXTENSION_DAYS
from bot.backoffice.lifecycle import (
    LIMITS,
    REQUIRED,
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Progress,
    record_progress,
)
from bot.desk.policy import Staff
from bot.desk.services import DeskServices
from storage.models import Case, CaseEvent
from storage.timeline import Timeline
from storage.uow import UnitOfWork

__all__ = [
    "LIMITS",
    "MAX_EXTENSION_DAYS",
    "REQUIRED",
    "STATUSES",
    "TRANSITIONS",
    "IllegalTransition",
    "Progress",
    "take_step",
]


async def take_step(
    uow: UnitOfWork, case: Case, step: Progress, staff: Staff, services: DeskServices, now: datetime
) -> CaseEvent:
    """Exactly what the back office's API does (status, deadlines, timeline, `case.updated`, the
    citizen's notice), under the person's account: actor `staff:<username>`, their name in data."""
    timeline = uow.events
    uow.events = _Signed(timeline, staff)  # type: ignore[assignment]
    try:
        return await record_progress(
            uow,
            case,
            replace(step, staff=staff.username),
            services.deadlines,
            now,
            services.surveys,
        )
    finally:
        uow.events = timeline


class _Signed:
    """The timeline, adding the person's display name to what they write.

    record_progress takes one `staff` string for both the actor and the data; the name goes in
    as the event is written, so its hash covers it. When the lifecycle takes the name itself,
    this goes.
    """

    def __init__(self, timeline: Timeline, staff: Staff) -> None:
        self.timeline, self.staff = timeline, staff

    async def append(
        self,
        case: Case,
        type_: str,
        actor: str,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
        *,
        first: bool = False,
    ) -> CaseEvent:
        if actor == self.staff.actor:
            data = {**(data or {}), "staff_name": self.staff.display_name}
        return await self.timeline.append(case, type_, actor, data, at, first=first)
