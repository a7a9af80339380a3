"""Proof of identity for a case asked about from a chat that did not file it: the 验证码 texted
to the mobile on file, the 查询码 given at filing, the limits on both, and the access a proof
grants. Every text, failure and success of a real case lands on its timeline.

An unknown code and a case with no mobile answer alike ("no_phone", "wrong"), so asking never
tells more than the code itself shows: its filing date.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from conversation.cases.proof import (
    SMS_CODE_LIFETIME,
    SMS_CODE_TRIES,
    ProofAnswer,
    ProofLimits,
    new_sms_code,
    phone_tail,
    retry_at,
)
from conversation.commands import ProveCase, SendProofCode
from conversation.messages import Inbound

from .lookups import case_view
from .models import Case, CaseAccess, Citizen, ProofCode, ProofFailure, utcnow
from .people import insert_ignoring_duplicates
from .uow import UnitOfWork

LIMITS = ProofLimits()


def query_code_hash(uow: UnitOfWork, case_code: str, query_code: str) -> str:
    """The only form a 查询码 is kept in: keyed, and bound to its case."""
    return uow.cipher.digest(query_code, f"query-code:{case_code}")


def _sms_code_hash(uow: UnitOfWork, case: Case, inbound: Inbound, code: str) -> str:
    return uow.cipher.digest(code, f"sms-code:{case.code}:{inbound.channel}:{inbound.sender}")


def seal_code(uow: UnitOfWork, code: str) -> str:
    """The 验证码 as the SMS job carries it until sent: encrypted, never in the clear."""
    return base64.b64encode(uow.cipher.encrypt(code, "proof-code")).decode()


def open_code(uow: UnitOfWork, sealed: str) -> str:
    return uow.cipher.decrypt(base64.b64decode(sealed), "proof-code")


class Proofs:
    def __init__(self, uow: UnitOfWork, limits: ProofLimits = LIMITS) -> None:
        self.uow = uow
        self.limits = limits

    async def send_code(self, command: SendProofCode, inbound: Inbound) -> ProofAnswer:
        uow, now = self.uow, utcnow()
        since = now - self.limits.window
        asked = await self._moments(
            ProofCode.created_at,
            since,
            ProofCode.channel == inbound.channel,
            ProofCode.external_id == inbound.sender,
        )
        failed = await self._asker_failures(inbound, since)
        wait = later(
            retry_at(asked, self.limits.texts, self.limits.window),
            retry_at(failed, self.limits.failures, self.limits.window),
        )
        case = await uow.cases.by_code(command.case_code, for_update=True)
        if wait is not None:
            await self._throttled(case, inbound, "sms", wait)
            return ProofAnswer("throttled", retry_at=wait)
        phone = uow.cases.contact(case)[1] if case is not None else ""
        citizen = (
            await uow.session.get(Citizen, case.citizen_id) if case and case.citizen_id else None
        )
        if case is None or not phone or (citizen is not None and citizen.sms_opted_out_at):
            await self._failed(case, inbound, "sms", "no_phone")
            return ProofAnswer("no_phone")
        phone_hash = uow.cipher.phone_hash(phone)
        per_case = await self._moments(ProofCode.created_at, since, ProofCode.case_id == case.id)
        per_phone = await self._moments(
            ProofCode.created_at, since, ProofCode.phone_hash == phone_hash
        )
        wait = later(
            retry_at(per_case, self.limits.texts, self.limits.window),
            retry_at(per_phone, self.limits.texts, self.limits.window),
        )
        if wait is not None:
            await self._throttled(case, inbound, "sms", wait)
            return ProofAnswer("throttled", retry_at=wait)
        # Only the newest 验证码 counts: one asked again makes the earlier ones useless.
        for earlier in await self._open_codes(case, inbound):
            earlier.tries_left = 0
        code = new_sms_code()
        row = ProofCode(
            case_id=case.id,
            channel=inbound.channel,
            external_id=inbound.sender,
            phone_hash=phone_hash,
            code_hash=_sms_code_hash(uow, case, inbound, code),
            tries_left=SMS_CODE_TRIES,
            expires_at=now + SMS_CODE_LIFETIME,
            created_at=now,
        )
        uow.session.add(row)
        await uow.flush()
        tail = phone_tail(phone)
        await uow.events.append(
            case, "proof.code_sent", f"citizen:{inbound.channel}", asker_data(inbound, tail=tail)
        )
        minutes = int(SMS_CODE_LIFETIME.total_seconds() // 60)
        await uow.notifications.add(
            f"citizen:proof:{row.id}",
            "citizen",
            "proof_sms",
            case,
            {
                "template": "verification",
                "sealed": seal_code(uow, code),
                "text_key": "proof.sms",
                "values": {"minutes": minutes},
            },
        )
        return ProofAnswer("sent", tail=tail)

    async def prove(self, command: ProveCase, inbound: Inbound) -> ProofAnswer:
        uow, now = self.uow, utcnow()
        since = now - self.limits.window
        case = await uow.cases.by_code(command.case_code, for_update=True)
        failed = await self._asker_failures(inbound, since)
        failed_here = (
            await self._moments(ProofFailure.at, since, ProofFailure.case_id == case.id)
            if case is not None
            else []
        )
        wait = later(
            retry_at(failed, self.limits.failures, self.limits.window),
            retry_at(failed_here, self.limits.failures, self.limits.window),
        )
        if wait is not None:
            await self._throttled(case, inbound, command.how, wait)
            return ProofAnswer("throttled", retry_at=wait)
        if command.how == "query":
            expected = case.query_code_hash if case is not None else None
            given = query_code_hash(uow, command.case_code, command.secret)
            if case is None or expected is None or not hmac.compare_digest(expected, given):
                await self._failed(case, inbound, "query", "wrong")
                return ProofAnswer("wrong")
            return await self._passed(case, inbound, "query")
        waiting = await self._open_codes(case, inbound) if case is not None else []
        if case is None or not waiting:
            await self._failed(case, inbound, "sms", "no_code")
            return ProofAnswer("no_code")
        row = waiting[0]
        if row.expires_at <= now:
            await self._failed(case, inbound, "sms", "expired")
            return ProofAnswer("expired")
        if not hmac.compare_digest(
            row.code_hash, _sms_code_hash(uow, case, inbound, command.secret)
        ):
            row.tries_left -= 1
            await self._failed(case, inbound, "sms", "wrong")
            if row.tries_left <= 0:
                return ProofAnswer("expired")
            return ProofAnswer("wrong", tries_left=row.tries_left)
        row.used_at, row.tries_left = now, 0
        return await self._passed(case, inbound, "sms")

    # -- what a proof grants ------------------------------------------------------------------

    async def _passed(self, case: Case, inbound: Inbound, how: str) -> ProofAnswer:
        uow, now = self.uow, utcnow()
        identity = await uow.people.identity(inbound.channel, inbound.sender)
        await insert_ignoring_duplicates(
            uow.session,
            CaseAccess,
            {"identity_id": identity.id, "case_id": case.id, "how": how, "granted_at": now},
            ["identity_id", "case_id"],
        )
        if how == "sms" and case.citizen_id is not None:
            # Holding the phone proves the person: their other cases open too, here, for good.
            identity.citizen_id, identity.citizen_proven_at = case.citizen_id, now
        await uow.events.append(
            case, "proof.passed", f"citizen:{inbound.channel}", asker_data(inbound, how=how)
        )
        return ProofAnswer("passed", case=case_view(case, await uow.events.events(case)))

    # -- counting -----------------------------------------------------------------------------

    async def _moments(
        self, column: InstrumentedAttribute[datetime], since: datetime, *where: Any
    ) -> list[datetime]:
        query = select(column).where(column >= since, *where)
        return list(await self.uow.session.scalars(query))

    async def _asker_failures(self, inbound: Inbound, since: datetime) -> list[datetime]:
        return await self._moments(
            ProofFailure.at,
            since,
            ProofFailure.channel == inbound.channel,
            ProofFailure.external_id == inbound.sender,
        )

    async def _open_codes(self, case: Case, inbound: Inbound) -> list[ProofCode]:
        rows = await self.uow.session.scalars(
            select(ProofCode)
            .where(
                ProofCode.case_id == case.id,
                ProofCode.channel == inbound.channel,
                ProofCode.external_id == inbound.sender,
                ProofCode.used_at.is_(None),
                ProofCode.tries_left > 0,
            )
            .order_by(ProofCode.id.desc())
        )
        return list(rows)

    async def _failed(self, case: Case | None, inbound: Inbound, how: str, why: str) -> None:
        self.uow.session.add(
            ProofFailure(
                case_id=case.id if case is not None else None,
                channel=inbound.channel,
                external_id=inbound.sender,
                at=utcnow(),
            )
        )
        if case is not None:
            data = asker_data(inbound, how=how, why=why)
            await self.uow.events.append(case, "proof.failed", f"citizen:{inbound.channel}", data)

    async def _throttled(
        self, case: Case | None, inbound: Inbound, how: str, until: datetime
    ) -> None:
        if case is not None:
            data = asker_data(inbound, how=how, until=self.uow.iso(until))
            await self.uow.events.append(
                case, "proof.throttled", f"citizen:{inbound.channel}", data
            )


def asker_data(inbound: Inbound, **more: str) -> dict[str, str]:
    """Who tried, for the timeline: the channel and a masked sender (a chat id is personal)."""
    return {"channel": inbound.channel, "sender": _masked(inbound.sender), **more}


def _masked(sender: str) -> str:
    return sender[:3] + "…" + sender[-2:] if len(sender) > 6 else "…"


def later(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None
