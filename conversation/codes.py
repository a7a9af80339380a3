"""Case codes: `XF` + filing date + `-` + 6 Crockford base32 characters, e.g. XF20261122-7K3M9Q."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import date

# Crockford's alphabet leaves out I, L, O and U: nothing to confuse when read over the phone.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CASE_CODE_RE = re.compile(r"XF\d{8}-[0-9A-HJKMNP-TV-Z]{6}")
_LOOSE = re.compile(r"XF\s*(\d{8})\s*[-—_ ]?\s*([0-9A-Z]{6})(?![0-9A-Z])")
_READ_ALOUD = str.maketrans("ILO", "110")


def new_case_code(day: date) -> str:
    """A fresh code for a matter filed on `day` (the office's local date); 32**6 per day."""
    # One draw of 30 random bits, five to a character: six `secrets.choice` were six draws
    # from the system's generator, each a system call.
    bits = secrets.randbits(30)
    tail = "".join(ALPHABET[(bits >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0))
    return f"XF{day:%Y%m%d}-{tail}"


def find_case_code(text: str) -> str | None:
    """A case code anywhere in the text, tolerating lower case, full-width and a missing dash."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    match = _LOOSE.search(folded)
    if not match:
        return None
    # Crockford base32 reads I and L as 1 and O as 0, so a code copied by hand still matches.
    code = f"XF{match.group(1)}-{match.group(2).translate(_READ_ALOUD)}"
    return code if CASE_CODE_RE.fullmatch(code) else None


def short_reference(code: str) -> str:
    """The last four characters, enough to tell a citizen's few open matters apart in an SMS."""
    return code[-4:]
