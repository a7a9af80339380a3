"""Checks for each kind of answer; a failure names the catalog text that tells the citizen why."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import phonenumbers

from .messages import Location

_EDGE_PUNCTUATION = " \t\r\n。，,.!！?？~～、:：;；\"'“”‘’()（）[]【】<>《》"
_CN_DIGITS = {
    "零": "0",
    "〇": "0",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}


@dataclass(frozen=True)
class Invalid:
    """Why an answer was refused: a catalog key and the values its text needs."""

    key: str
    values: dict[str, Any]


def normalize(text: str) -> str:
    """Full-width to half-width, collapsed spaces, no punctuation around: for matching words."""
    folded = unicodedata.normalize("NFKC", text or "")
    return " ".join(folded.split()).strip(_EDGE_PUNCTUATION).lower()


def choice_number(text: str) -> int | None:
    """`3`, `３`, `三`, `第3项`, `3.` → 3; anything else → None."""
    word = normalize(text)
    word = word.removeprefix("第").removesuffix("项").removesuffix("个").strip()
    if len(word) == 1 and word in _CN_DIGITS:
        word = _CN_DIGITS[word]
    return int(word) if word.isdigit() and len(word) <= 3 else None


def description(text: str, minimum: int = 10, maximum: int = 2000) -> str | Invalid:
    value = (text or "").strip()
    if len(value) < minimum:
        return Invalid("err.description.short", {"min": minimum})
    if len(value) > maximum:
        return Invalid("err.description.long", {"max": maximum})
    return value


def free_text(text: str, minimum: int = 1, maximum: int = 500) -> str | Invalid:
    value = (text or "").strip()
    if len(value) < max(minimum, 1):
        return Invalid("err.text.short", {"min": max(minimum, 1)})
    if len(value) > maximum:
        return Invalid("err.text.long", {"max": maximum})
    return value


LOCATION_TEXT_MAX = 200


def location(text: str, point: Location | None) -> dict[str, Any] | Invalid:
    """An address in words, or coordinates (with the map's label when the channel sends one)."""
    if point is not None:
        if not (-90 <= point.lat <= 90 and -180 <= point.lng <= 180):
            return Invalid("err.location", {})
        label = point.label.strip()[:LOCATION_TEXT_MAX]
        return {
            "text": label or f"{point.lat:.6f}, {point.lng:.6f}",
            "lat": point.lat,
            "lng": point.lng,
        }
    value = " ".join((text or "").split())
    if len(value) < 2:
        return Invalid("err.location", {})
    if len(value) > LOCATION_TEXT_MAX:
        return Invalid("err.location.long", {"max": LOCATION_TEXT_MAX})
    return {"text": value, "lat": None, "lng": None}


def person_name(text: str) -> str | Invalid:
    value = " ".join((text or "").split())
    if not value:
        return Invalid("err.name.empty", {})
    if len(value) > 30:
        return Invalid("err.name.long", {})
    if re.fullmatch(r"[\d\s+\-]+", unicodedata.normalize("NFKC", value)):
        return Invalid("err.name.digits", {})
    return value


_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def phone(text: str) -> str | Invalid:
    """A Chinese mobile number, or any valid international number written with `+`: as E.164.

    Chinese numbers must be mobiles because the office follows up by SMS; abroad we accept what
    the numbering plan calls valid, since many countries do not tell mobiles apart.
    """
    raw = unicodedata.normalize("NFKC", text or "").strip()
    raw = re.sub(r"[\s\-()（）]", "", raw)
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not re.fullmatch(r"\+?\d{5,17}", raw):
        return Invalid("err.phone", {})
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else "CN")
    except phonenumbers.NumberParseException:
        return Invalid("err.phone", {})
    if not phonenumbers.is_valid_number(number):
        return Invalid("err.phone", {})
    if number.country_code == 86 and phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return Invalid("err.phone", {})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
