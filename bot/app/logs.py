"""Logging set-up that masks phone numbers in every record, whoever logged them."""

from __future__ import annotations

import logging
import re

# Chinese mobiles (with or without +86) and other E.164 numbers.
_PHONE = re.compile(
    r"(?<![\d])(\+?\d{0,3})?(1[3-9]\d)(\d{4})(\d{4})(?![\d])|(\+\d{2,4})(\d{3,6})(\d{4})(?![\d])"
)


def mask_phones(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        if match.group(2):
            return f"{match.group(1) or ''}{match.group(2)}****{match.group(4)}"
        return f"{match.group(5)}****{match.group(7)}"

    return _PHONE.sub(repl, text)


class PhoneMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PhoneMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel("WARNING")
