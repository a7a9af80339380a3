"""What Open311 may show of a case to anyone: its words with phone numbers, e-mail addresses
and the citizen's own name and number taken out (people write them into descriptions)."""

from __future__ import annotations

import re
from collections.abc import Iterable

HIDDEN = "***"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Mobiles (138 0013 8000, +86-138-0013-8000), landlines (010-12345678) and numbers written
# with a country code; runs of digits inside longer ones (a case code, a date) are left alone.
_PHONE = re.compile(
    r"(?<![\dA-Za-z])(?:"
    r"(?:\+|00)\d{1,3}[\s-]?\d(?:[\s-]?\d){5,13}"
    r"|1[3-9]\d(?:[\s-]?\d){8}"
    r"|0\d{2,3}[\s-]?\d{7,8}"
    r")(?!\d)"
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` without e-mails, phone numbers and the `known` words (the contact's name)."""
    if not text:
        return text
    for word in sorted({w for w in known if len(w) >= 2}, key=len, reverse=True):
        text = text.replace(word, HIDDEN)
    text = _EMAIL.sub(HIDDEN, text)
    return _PHONE.sub(HIDDEN, text)
