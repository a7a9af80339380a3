"""Logging set-up that masks phone numbers and WeChat openids in every record, whoever logged
them — the whole formatted record, tracebacks and exception messages included: plain lines for
people, or JSON lines (`MINYI_LOG_FORMAT=json`) for the log collectors offices already run."""

from __future__ import annotations

import logging
import re
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Chinese mobiles (with or without +86) and other E.164 numbers.
_PHONE = re.compile(
    r"(?<![\d])(\+?\d{0,3})?(1[3-9]\d)(\d{4})(\d{4})(?![\d])|(\+\d{2,4})(\d{3,6})(\d{4})(?![\d])"
)

LOG_FORMATS = ("text", "json")


# A WeChat openid: 28 characters, `o` then base64url (e.g. oJ6Fq5... ); kept as o6_b****XYZ1.
_OPENID = re.compile(
    r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{20}([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])"
)


def mask_openids(text: str) -> str:
    return _OPENID.sub(r"\1****\2", text)


def mask(text: str) -> str:
    return mask_openids(mask_phones(text))


def mask_phones(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        if match.group(2):
            return f"{match.group(1) or ''}{match.group(2)}****{match.group(4)}"
        return f"{match.group(5)}****{match.group(7)}"

    return _PHONE.sub(repl, text)


class PhoneMaskingFilter(logging.Filter):
    """Masks the message itself, so that every handler (not only ours) gets it masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _masked(value: Any) -> Any:
    """Every string inside a value, masked; other values (numbers, booleans) as they are."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask(str(value))


class JsonLines(JsonFormatter):
    """One JSON object a line: `time`, `level`, `logger`, `message`, `process`, then each
    `extra=` attribute as its own field and `exc_info` when there is one; phones masked in all."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message", "process"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        stamp = log_data.pop("time")
        # Milliseconds in UTC with a Z: what Loki, Elasticsearch and Fluent Bit read untouched.
        time = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        return {"time": time, **{key: _masked(value) for key, value in log_data.items()}}


class MaskingFormatter(logging.Formatter):
    """Masks the record as written: an exception's message and traceback (a failed INSERT
    quotes its values, a ValueError may quote the input) never reach the log unmasked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(PhoneMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel("WARNING")
