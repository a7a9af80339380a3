"""Applies the conversation's write commands inside the turn's unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.proof import new_query_code
from conversation.commands import (
    AddRatingComment,
    Command,
    ProveCase,
    RecordRating,
    RelayToStaff,
    RequestHandoff,
    RequestReview,
    Results,
    SendProofCode,
    SubmitCase,
    Supplement,
    Unsubscribe,
    Urge,
)
from conversation.messages import Inbound

from . import follow, ratings
from .filing import Filer, file_case
from .handoffs import exported
from .models import Case, utcnow
from .proof import Proofs
from .staff_threads import relay_from_citizen
from .uow import UnitOfWork


def writes_once(commands: Sequence[Command]) -> bool:
    """Whether applying `commands` writes a single statement on PostgreSQL, atomic without a
    transaction around it: a submit with no photos or voices (rows of their own) and no risk
    words (the staff's alert) is `Filings.write`'s one statement — the person, the identity,
    the case, its first event and its outbox entry. (A form sent again is found by its id, a
    read.) On SQLite a filing is several statements; `StoreTurn` asks only on PostgreSQL."""
    if len(commands) != 1:
        return False
    command = commands[0]
    return isinstance(command, SubmitCase) and not command.attachments and not command.risk_words


class CommandHandler:
    def __init__(self, uow: UnitOfWork, deadlines: LegalDeadlines) -> None:
        self.uow = uow
        self.deadlines = deadlines

    async def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results:
        results = Results()
        for command in commands:
            match command:
                case SubmitCase():
                    results = await self.submit(command, inbound)
                case RequestHandoff():
                    await self.handoff(command, inbound)
                case RecordRating():
                    results = results.with_value("rated", await self.rate(command, inbound))
                case AddRatingComment():
                    await self.comment(command, inbound)
                case RequestReview():
                    results = results.with_value("review", await self.review(command, inbound))
                case RelayToStaff():
                    key = inbound.message_id or uuid.uuid4().hex
                    relayed = await relay_from_citizen(
                        self.uow, command.thread, command.text, key, command.photos
                    )
                    results = results.with_value("relayed", relayed)
                case SendProofCode():
                    answer = await Proofs(self.uow).send_code(command, inbound)
                    results = results.with_value("proof", answer)
                case ProveCase():
                    answer = await Proofs(self.uow).prove(command, inbound)
                    results = results.with_value("proof", answer)
                case Supplement():
                    case = await self._own_case(command.case_code, inbound)
                    added = (
                        await follow.supplement(self.uow, case, command, inbound)
                        if case is not None
                        else "not_possible"
                    )
                    results = results.with_value("supplement", added)
                case Urge():
                    case = await self._own_case(command.case_code, inbound)
                    urged = (
                        await follow.urge(self.uow, case, command, inbound)
                        if case is not None
                        else ("not_open", None)
                    )
                    results = results.with_value("urge", urged)
                case Unsubscribe():
                    identity = await self.uow.people.identity(inbound.channel, inbound.sender)
                    identity.unsubscribed_at = utcnow()
        return results

    async def submit(self, command: SubmitCase, inbound: Inbound) -> Results:
        uow = self.uow
        # Shown once, in the receipt; kept only as a keyed hash.
        query = new_query_code() if command.anonymous else ""
        filer = Filer(
            inbound.channel,
            inbound.sender,
            f"citizen:{inbound.channel}",
            language=command.language,
            link=True,
        )
        case = await file_case(uow, self.deadlines, command, filer, query_code=query)
        if case is None:
            # The same form submitted again (a retry after a crash, a lost state write): same case.
            existing = await uow.cases.by_origin(command.origin)
            assert existing is not None
            return _results(existing)
        if not query:
            return _results(case)
        return _results(case).with_value("query_code", query)

    async def handoff(self, command: RequestHandoff, inbound: Inbound) -> None:
        # Staff may answer through the alert: the person must be known even before any case.
        await self.uow.people.identity(inbound.channel, inbound.sender)
        data = {
            "channel": inbound.channel,
            "sender": inbound.sender,
            "reason": command.reason,
            "summary": command.summary,
            "risk_words": list(command.risk_words),
        }
        if command.case_code:
            case = await self._own_case(command.case_code, inbound, for_update=False)
        else:
            # Someone with a matter on file who asks for a person most likely means that one:
            # the request, and what staff say, go on its timeline.
            latest = await self.uow.cases.of_identity(inbound.channel, inbound.sender, limit=1)
            case = await self.uow.cases.by_code(latest[0].code) if latest else None
        shown = exported(data)  # the staff alert below keeps the sender; what leaves may not
        if case is not None:
            await self.uow.events.append(
                case, "handoff.requested", f"citizen:{inbound.channel}", shown
            )
        entry = await self.uow.outbox.add("handoff.requested", case.code if case else "", shown)
        topic = "risk" if command.reason == "risk" else "handoff"
        await self.uow.notifications.add(f"staff:{topic}:{entry.id}", "staff", topic, case, data)

    async def rate(self, command: RecordRating, inbound: Inbound) -> bool:
        case = await self._own_case(command.case_code, inbound)
        if case is None:
            return False
        return await ratings.record_rating(
            self.uow,
            case,
            score=command.score,
            scale=command.scale,
            label=command.label,
            unhappy=command.unhappy,
            channel=inbound.channel,
            comment=command.comment,
        )

    async def comment(self, command: AddRatingComment, inbound: Inbound) -> None:
        case = await self._own_case(command.case_code, inbound)
        if case is not None:
            await ratings.add_comment(self.uow, case, command.comment, inbound.channel)

    async def review(self, command: RequestReview, inbound: Inbound) -> str:
        case = await self._own_case(command.case_code, inbound)
        if case is None:
            return "not_possible"
        return await ratings.request_review(self.uow, case, command.decision_due, inbound.channel)

    async def _own_case(
        self, code: str, inbound: Inbound, *, for_update: bool = True
    ) -> Case | None:
        """The asker's own case, mapped for a change (locked unless `for_update` is False)."""
        owned = await self.uow.cases.owned(inbound.channel, inbound.sender, code)
        if owned is None:
            return None
        return await self.uow.cases.by_code(code, for_update=for_update)


def _results(case: Case) -> Results:
    return Results(
        case_code=case.code,
        case_created_at=case.created_at,
        values={"acceptance_due": case.accept_due_at},
    )
