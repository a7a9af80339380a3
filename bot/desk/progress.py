"""The desk's one door to the case lifecycle: every step a person takes goes through here.

The lifecycle's table is conversation/cases/, its one writer storage/lifecycle.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.desk.policy import Staff
from bot.desk.services import DeskServices
from conversation.cases.deadlines import MAX_EXTENSION_DAYS
from conversation.cases.lifecycle import STATUSES, TRANSITIONS, IllegalTransition
from conversation.cases.progress import LIMITS, REQUIRED, Progress
from storage.lifecycle import record_progress
from storage.models import Case, CaseEvent
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
    return await record_progress(
        uow,
        case,
        replace(step, staff=staff.username),
        services.deadlines,
        now,
        services.surveys,
        staff_name=staff.display_name,
    )
