"""Proof that a person may read a case they did not file from this chat: its 查询码, or a
one-time 验证码 texted to the mobile on file. The rules and limits live here; storage keeps
the counts and the keyed hashes, and nobody else decides.

Limits are counted per case, per asker (channel and sender) and per mobile, over a sliding
window, so that neither one person nor many can guess codes or flood a phone with texts.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# Crockford's base32, as the case codes use it (conversation/codes.py): no I, L, O or U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SMS_CODE_DIGITS = 6
SMS_CODE_LIFETIME = timedelta(minutes=10)
SMS_CODE_TRIES = 5
QUERY_CODE_LENGTH = 8  # 32**8 ≈ 10**12: not guessable within the failure limits below
_READ_ALOUD = str.maketrans("ILO", "110")

ProofOutcome = Literal[
    "passed",  # the status follows
    "sent",  # a 验证码 is on its way (`tail`: the mobile's last 4 digits)
    "no_phone",  # nowhere to text: no such case, an anonymous one, or no mobile on file
    "wrong",  # not the right 查询码 / 验证码 (`tries_left` for a 验证码)
    "no_code",  # a 6-digit answer but no 验证码 is waiting for this asker and case
    "expired",  # the 验证码's 10 minutes, or its 5 tries, are over
    "throttled",  # too many texts or failures: `retry_at` says when again
]


@dataclass(frozen=True)
class ProofLimits:
    """At most `texts` 验证码 an hour per case, per asker and per mobile; at most `failures`
    wrong answers an hour per case and per asker."""

    texts: int = 3
    failures: int = 10
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class ProofAnswer:
    """What a proof step came to, for the reply. `case` is the citizen's view after "passed"."""

    outcome: ProofOutcome
    tail: str = ""
    tries_left: int = 0
    retry_at: datetime | None = None
    case: object | None = None  # conversation.ports.CaseView (kept loose: ports imports this)


def new_query_code() -> str:
    """A fresh 查询码 shown once at filing: 8 Crockford base32 characters, e.g. 7K3M9QXD."""
    return "".join(secrets.choice(ALPHABET) for _ in range(QUERY_CODE_LENGTH))


def new_sms_code() -> str:
    return f"{secrets.randbelow(10**SMS_CODE_DIGITS):0{SMS_CODE_DIGITS}d}"


def read_secret(text: str) -> tuple[Literal["sms", "query"], str] | None:
    """What the citizen typed, as a 验证码 (6 digits) or a 查询码 (8 characters), or None.

    Spaces, dashes, full-width forms and lower case are forgiven; I, L and O read as 1, 1, 0
    as in the case code, since a 查询码 copied by hand is read off a screen or a note."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    folded = "".join(ch for ch in folded if ch.isalnum())
    if len(folded) == SMS_CODE_DIGITS and folded.isdigit():
        return "sms", folded
    candidate = folded.translate(_READ_ALOUD)
    if len(candidate) == QUERY_CODE_LENGTH and all(ch in ALPHABET for ch in candidate):
        return "query", candidate
    return None


def phone_tail(phone: str) -> str:
    """The last 4 digits: all that is shown of the mobile a 验证码 goes to."""
    return phone[-4:]


def retry_at(moments: list[datetime], limit: int, window: timedelta) -> datetime | None:
    """When the next try is allowed if `moments` (within the window) already reach `limit`."""
    if len(moments) < limit:
        return None
    return sorted(moments)[-limit] + window
