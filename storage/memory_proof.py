"""Proof of identity on the in-memory cases: storage/proof.py's twin, the same limits and
answers, the same timeline entries. The 验证码 a real store would text is kept on its record
(`sent_code`), where a test reads it as it would read the fake SMS provider."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from conversation.cases.proof import (
    SMS_CODE_LIFETIME,
    SMS_CODE_TRIES,
    ProofAnswer,
    new_sms_code,
    phone_tail,
    retry_at,
)
from conversation.commands import ProveCase, SendProofCode
from conversation.messages import Inbound

from .lookups import case_view
from .proof import LIMITS, asker_data, later

# A case record of storage/memory_cases.py (code, phone, anonymous, query_code_hash,
# timeline); kept loose so that the two modules do not import each other.
CaseRecord = Any


@dataclass(frozen=True)
class ProofCodeRecord:
    """A 验证码 texted for one asker, as storage.models.ProofCode keeps it."""

    id: int
    case: str
    asker: tuple[str, str]
    phone: str
    code_hash: str
    tries_left: int
    expires_at: datetime
    created_at: datetime
    used: bool = False
    sent_code: str = ""  # what the SMS carried: the twin's stand-in for the notifier


class Committed(Protocol):
    proof_codes: dict[int, ProofCodeRecord]
    proof_failures: list[tuple[tuple[str, str], str, datetime]]


class CaseChanges(Protocol):
    """What proof needs of one turn's view of the in-memory cases (memory_cases.CaseChanges)."""

    @property
    def cases(self) -> Committed: ...

    proof_codes: dict[int, ProofCodeRecord]
    proof_failures: list[tuple[tuple[str, str], str, datetime]]
    access: set[tuple[str, str, str]]
    proven: dict[tuple[str, str], str]
    linked: dict[tuple[str, str], str]

    def clock(self) -> datetime: ...
    def sms_codes(self) -> dict[int, ProofCodeRecord]: ...
    def case(self, code: str) -> CaseRecord | None: ...
    def note(self, case: CaseRecord, type_: str, data: dict[str, Any], at: datetime) -> None: ...
    def keyed(self, value: str, purpose: str) -> str: ...


def send_code(changes: CaseChanges, command: SendProofCode, inbound: Inbound) -> ProofAnswer:
    now, asker = changes.clock(), (inbound.channel, inbound.sender)
    since = now - LIMITS.window
    codes = changes.sms_codes().values()
    asked = [c.created_at for c in codes if c.asker == asker and c.created_at >= since]
    wait = later(
        retry_at(asked, LIMITS.texts, LIMITS.window),
        retry_at(_failures(changes, asker=asker, since=since), LIMITS.failures, LIMITS.window),
    )
    case = changes.case(command.case_code)
    if wait is not None:
        _throttled(changes, case, inbound, "sms", wait)
        return ProofAnswer("throttled", retry_at=wait)
    if case is None or not case.phone or case.anonymous:
        _failed(changes, case, inbound, "sms", "no_phone")
        return ProofAnswer("no_phone")
    per_case = [c.created_at for c in codes if c.case == case.code and c.created_at >= since]
    per_phone = [c.created_at for c in codes if c.phone == case.phone and c.created_at >= since]
    wait = later(
        retry_at(per_case, LIMITS.texts, LIMITS.window),
        retry_at(per_phone, LIMITS.texts, LIMITS.window),
    )
    if wait is not None:
        _throttled(changes, case, inbound, "sms", wait)
        return ProofAnswer("throttled", retry_at=wait)
    for earlier in _open_codes(changes, case, asker):
        changes.proof_codes[earlier.id] = replace(earlier, tries_left=0)
    code = new_sms_code()
    number = len(changes.sms_codes()) + 1
    changes.proof_codes[number] = ProofCodeRecord(
        id=number,
        case=case.code,
        asker=asker,
        phone=case.phone,
        code_hash=_code_hash(changes, case, inbound, code),
        tries_left=SMS_CODE_TRIES,
        expires_at=now + SMS_CODE_LIFETIME,
        created_at=now,
        sent_code=code,
    )
    tail = phone_tail(case.phone)
    changes.note(case, "proof.code_sent", asker_data(inbound, tail=tail), now)
    return ProofAnswer("sent", tail=tail)


def prove(changes: CaseChanges, command: ProveCase, inbound: Inbound) -> ProofAnswer:
    now, asker = changes.clock(), (inbound.channel, inbound.sender)
    since = now - LIMITS.window
    case = changes.case(command.case_code)
    wait = later(
        retry_at(_failures(changes, asker=asker, since=since), LIMITS.failures, LIMITS.window),
        retry_at(
            _failures(changes, case=case.code, since=since) if case else [],
            LIMITS.failures,
            LIMITS.window,
        ),
    )
    if wait is not None:
        _throttled(changes, case, inbound, command.how, wait)
        return ProofAnswer("throttled", retry_at=wait)
    if command.how == "query":
        given = changes.keyed(command.secret, f"query-code:{command.case_code}")
        expected = case.query_code_hash if case is not None else None
        if case is None or expected is None or not hmac.compare_digest(expected, given):
            _failed(changes, case, inbound, "query", "wrong")
            return ProofAnswer("wrong")
        return _passed(changes, case, inbound, "query")
    waiting = _open_codes(changes, case, asker) if case is not None else []
    if case is None or not waiting:
        _failed(changes, case, inbound, "sms", "no_code")
        return ProofAnswer("no_code")
    row = waiting[0]
    if row.expires_at <= now:
        _failed(changes, case, inbound, "sms", "expired")
        return ProofAnswer("expired")
    if not hmac.compare_digest(row.code_hash, _code_hash(changes, case, inbound, command.secret)):
        changes.proof_codes[row.id] = replace(row, tries_left=row.tries_left - 1)
        _failed(changes, case, inbound, "sms", "wrong")
        if row.tries_left - 1 <= 0:
            return ProofAnswer("expired")
        return ProofAnswer("wrong", tries_left=row.tries_left - 1)
    changes.proof_codes[row.id] = replace(row, tries_left=0, used=True)
    return _passed(changes, case, inbound, "sms")


def _passed(changes: CaseChanges, case: CaseRecord, inbound: Inbound, how: str) -> ProofAnswer:
    asker = (inbound.channel, inbound.sender)
    changes.access.add((inbound.channel, inbound.sender, case.code))
    if how == "sms" and case.phone:
        changes.linked[asker] = changes.proven[asker] = case.phone
    changes.note(case, "proof.passed", asker_data(inbound, how=how), changes.clock())
    seen = changes.case(case.code)
    assert seen is not None
    return ProofAnswer("passed", case=case_view(seen, seen.timeline))


def _open_codes(
    changes: CaseChanges, case: CaseRecord, asker: tuple[str, str]
) -> list[ProofCodeRecord]:
    codes = changes.sms_codes().values()
    mine = [c for c in codes if c.case == case.code and c.asker == asker]
    return sorted((c for c in mine if not c.used and c.tries_left > 0), key=lambda c: -c.id)


def _code_hash(changes: CaseChanges, case: CaseRecord, inbound: Inbound, code: str) -> str:
    return changes.keyed(code, f"sms-code:{case.code}:{inbound.channel}:{inbound.sender}")


def _failures(
    changes: CaseChanges,
    *,
    since: datetime,
    asker: tuple[str, str] | None = None,
    case: str | None = None,
) -> list[datetime]:
    every = changes.cases.proof_failures + changes.proof_failures
    return [
        at
        for who, code, at in every
        if at >= since and (asker is None or who == asker) and (case is None or code == case)
    ]


def _failed(
    changes: CaseChanges, case: CaseRecord | None, inbound: Inbound, how: str, why: str
) -> None:
    now = changes.clock()
    changes.proof_failures.append(
        ((inbound.channel, inbound.sender), case.code if case else "", now)
    )
    if case is not None:
        changes.note(case, "proof.failed", asker_data(inbound, how=how, why=why), now)


def _throttled(
    changes: CaseChanges, case: CaseRecord | None, inbound: Inbound, how: str, until: datetime
) -> None:
    if case is not None:
        data = asker_data(inbound, how=how, until=until.isoformat())
        changes.note(case, "proof.throttled", data, changes.clock())
