"""The desk's one door to the case lifecycle: every step a person takes goes through here.

The lifecycle (its table and `record_progress`) is moving out of bot/backoffice; re-point the
imports below and nothing else in the desk changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

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
from storage.timeline import event_hash
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
    # record_progress takes one `staff` string for both the actor and the data. The display
    # name is added before the event is first written (nothing is flushed meanwhile) and the
    # hash sealed over the result; the timeline's append-only trigger refuses any later change.
    with uow.session.no_autoflush:
        event = await record_progress(
            uow,
            case,
            replace(step, staff=staff.username),
            services.deadlines,
            now,
            services.surveys,
        )
    event.data = {**event.data, "staff_name": staff.display_name}
    event.hash = event_hash(
        event.prev_hash, case.code, event.seq, event.type, event.actor, event.data, event.at
    )
    return event
