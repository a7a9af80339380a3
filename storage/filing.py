"""Filing a case, whoever files it: the conversation's submit, the intake API and Open311 all
end in `file_case`, so a case is the same however it arrived."""

from __future__ import annotations

from dataclasses import dataclass

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.kinds import kind_of
from conversation.commands import SubmitCase

from .cases import attachment_rows
from .documents import case_document
from .models import Case, Citizen, Identity, utcnow
from .uow import UnitOfWork

# Ways in where a system files for a citizen (a grid worker's app, a kiosk, a city platform):
# the case's identity is the filing system (`api` / `grid:07`), never a chat of the citizen.
INTAKE_CHANNELS = frozenset({"api", "open311"})


@dataclass(frozen=True)
class Filer:
    """Who files: the identity the case hangs on, its channel, and the timeline's actor."""

    identity: Identity
    channel: str
    actor: str
    department: str = ""  # where the filer routes it, over the office's suggestion


async def file_case(
    uow: UnitOfWork, deadlines: LegalDeadlines, command: SubmitCase, filer: Filer
) -> tuple[Case, Citizen | None]:
    """A new case under a fresh code, its `submitted` step, `case.submitted` for the back
    office and staff paged for risk words, in the caller's unit of work (which commits)."""
    if command.anonymous and (command.name or command.phone):
        raise ValueError("an anonymous filing carries no name or mobile")
    citizen = await uow.people.citizen(command.phone, command.name) if command.phone else None
    now = utcnow()
    timed = kind_of(command.kind).timed
    case = Case(
        origin=command.origin,
        kind=command.kind,
        category=command.category,
        description=command.description,
        location_text=command.location_text,
        lat=command.lat,
        lng=command.lng,
        channel=filer.channel,
        identity_id=filer.identity.id,
        citizen_id=citizen.id if citizen else None,
        source=command.source,
        language=command.language,
        answers=command.answers,
        risk_words=list(command.risk_words),
        status="submitted",
        department=filer.department or command.department,
        mailbox=command.mailbox,
        anonymous=command.anonymous,
        created_at=now,
        updated_at=now,
        # A suggestion has no decision on acceptance to make within 15 days.
        accept_due_at=command.acceptance_due if timed else None,
        stages=deadlines.stages_from("submitted", now) if timed else [],
    )
    uow.cases.set_contact(case, command.name, command.phone)
    attachments = attachment_rows(filer.channel, command.attachments)
    await uow.cases.add(case, now.astimezone(deadlines.tz).date(), attachments)
    await uow.events.append(
        case,
        "submitted",
        filer.actor,
        {"kind": case.kind, "category": case.category, "attachments": len(attachments)},
        at=now,
        first=True,
    )
    # Repeat detection (重复信访) hooks in here, the one place every filing passes, before the
    # back office hears of the case.
    document = case_document(case, (command.name, command.phone), attachments, None, uow.tz)
    contact = document.pop("contact")
    # An anonymous case sends the back office no contact, not even an empty one.
    private = None if case.anonymous else {"contact": contact}
    await uow.outbox.add("case.submitted", case.code, document, private=private)
    if command.risk_words:
        await uow.notifications.add(
            f"staff:risk:{case.code}",
            "staff",
            "risk",
            case,
            {"risk_words": list(command.risk_words)},
        )
    return case, citizen


async def file_for_citizen(
    uow: UnitOfWork, deadlines: LegalDeadlines, command: SubmitCase, channel: str, department: str
) -> Case:
    """A case another system files for a citizen (`channel` in INTAKE_CHANNELS): hung on the
    filing system's identity (`command.source`), and with a mobile given, the receipt a chat
    gives on submit — the code and the next legal step — queued for the notifier to text."""
    identity = await uow.people.identity(channel, command.source, command.language)
    filer = Filer(identity, channel, f"{channel}:{command.source}", department)
    case, _ = await file_case(uow, deadlines, command, filer)
    if command.phone:
        data = {"accept_by": uow.iso(case.accept_due_at)} if case.accept_due_at else {}
        await uow.notifications.add(
            f"citizen:{case.code}:receipt", "citizen", "receipt", case, data
        )
    return case
