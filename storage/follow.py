"""补充 and 催办 on a citizen's own case: on the timeline, to the back office as `case.updated`,
and to staff through the alerts (the case's department sees them on the desk).

Repeated urges are counted on each `urged` event (`count`); the escalation rules of the case
work read them there and from the stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversation.cases.citizen import ANSWERED, URGEABLE
from conversation.commands import Supplement, Urge
from conversation.messages import Inbound

from .cases import attachment_rows
from .models import Case, utcnow
from .ratings import request_review
from .uow import UnitOfWork

SUMMARY = 200


def supplement_data(command: Supplement, channel: str) -> dict[str, Any]:
    data: dict[str, Any] = {"channel": channel, "text": command.text}
    if command.attachments:
        data["attachments"] = len(command.attachments)
    if command.location_text or command.lat is not None:
        data["location"] = {"text": command.location_text, "lat": command.lat, "lng": command.lng}
    return data


async def supplement(uow: UnitOfWork, case: Case, command: Supplement, inbound: Inbound) -> str:
    """ "added", "review" (a review was asked with it), "too_late" or "not_possible"."""
    now, outcome = utcnow(), "added"
    if case.status in ANSWERED:
        if command.review_decision_due is None:
            return "not_possible"
        asked = await request_review(uow, case, command.review_decision_due, inbound.channel, now)
        if asked != "requested":
            return asked
        outcome = "review"
    elif case.status not in URGEABLE:
        return "not_possible"
    for row in attachment_rows(inbound.channel, command.attachments):
        row.case_id = case.id
        uow.session.add(row)
    data = supplement_data(command, inbound.channel)
    event = await uow.events.append(case, "supplemented", f"citizen:{inbound.channel}", data)
    await uow.outbox.add("case.updated", case.code, {"status": case.status, "supplemented": data})
    summary = command.text[:SUMMARY] or command.location_text
    await uow.notifications.add(
        f"staff:supplemented:{case.code}:{event.seq}",
        "staff",
        "supplemented",
        case,
        {"summary": summary, "attachments": len(command.attachments)},
    )
    return outcome


async def urge(
    uow: UnitOfWork, case: Case, command: Urge, inbound: Inbound
) -> tuple[str, datetime | int | None]:
    """("urged", n-th urge), ("too_soon", when next allowed) or ("not_open", None)."""
    if case.status not in URGEABLE:
        return "not_open", None
    now = utcnow()
    urges = [e.at for e in await uow.events.events(case) if e.type == "urged"]
    if urges and now < max(urges) + command.every:
        return "too_soon", max(urges) + command.every
    count = len(urges) + 1
    data = {"channel": inbound.channel, "count": count}
    event = await uow.events.append(case, "urged", f"citizen:{inbound.channel}", data)
    await uow.outbox.add("case.updated", case.code, {"status": case.status, "urged": count})
    await uow.notifications.add(
        f"staff:urged:{case.code}:{event.seq}", "staff", "urged", case, {"count": count}
    )
    return "urged", count
