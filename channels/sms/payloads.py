"""Reading provider webhook bodies strictly, with a sentence saying what is wrong when they are not
what the provider documents."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from .common import PayloadError

MAX_ITEMS = 1000


def json_value(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PayloadError("The body is not valid UTF-8 JSON.") from None


def json_object(body: bytes, what: str) -> dict[str, Any]:
    value = json_value(body)
    if not isinstance(value, dict):
        raise PayloadError(f"The body must be a JSON object of {what}.")
    return value


def json_array(body: bytes, what: str) -> list[dict[str, Any]]:
    """A JSON array of objects, as Alibaba and Tencent push them (several per request)."""
    return objects(json_value(body), what)


def objects(value: Any, what: str) -> list[dict[str, Any]]:
    """`value`, already parsed, as the list of JSON objects it must be."""
    if not isinstance(value, list):
        raise PayloadError(f"The body must be a JSON array of {what}.")
    if len(value) > MAX_ITEMS:
        raise PayloadError(f"The body has {len(value)} items; at most {MAX_ITEMS} are accepted.")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(f"item {index}: must be a JSON object")
    return value


def form(body: bytes) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body as (name, value) pairs, repeats kept."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("The form body is not valid UTF-8.") from None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise PayloadError("The body is not a URL-encoded form.") from None


def required_string(
    item: dict[str, Any], name: str, index: int | None = None, *, empty: bool = False
) -> str:
    """A field that must be a string (numbers are accepted and written out: ids and phones)."""
    where = f"item {index}: " if index is not None else ""
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise PayloadError(f"{where}{name} must be a {'' if empty else 'non-empty '}string")
    return value


def optional_string(item: dict[str, Any], name: str, index: int | None = None) -> str:
    if item.get(name) is None:
        return ""
    return required_string(item, name, index, empty=True)
