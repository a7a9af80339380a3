"""How a `MINYI_*` setting is declared and checked, for the core and for each channel package.

A setting is a `Spec`: the variable's name, a parser that turns the raw text into a value (or
raises `SettingError` with one line naming the variable), and a default. Each channel package
declares its own specs and reads them from the `values` the composition root gives it, so adding
a channel never touches the core settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Parser = Callable[[str, str], Any]


class SettingError(ValueError):
    """One line naming the variable and what is wrong with it."""


def text(name: str, value: str) -> str:
    return value


def secret(minimum: int) -> Parser:
    """A shared secret or token: at least `minimum` characters, since anything shorter can be
    guessed (`MINYI_API_TOKEN=a` used to be accepted)."""

    def parse(name: str, value: str) -> str:
        if len(value) < minimum:
            raise SettingError(
                f"{name}: use at least {minimum} random characters (this one has {len(value)}); "
                'make one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`'
            )
        return value

    return parse


def url(*schemes: str) -> Parser:
    def parse(name: str, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise SettingError(
                f"{name}: {value!r} is not a valid URL (expected {' or '.join(schemes)}://host…)"
            )
        return value.rstrip("/")

    return parse


def number(convert: Callable[[str], float], low: float, high: float) -> Parser:
    """A whole number (`convert=int`) or any number (`float`) within [low, high]."""
    kind = "a whole number" if convert is int else "a number"

    def parse(name: str, value: str) -> Any:
        try:
            parsed = convert(value)
        except ValueError:
            raise SettingError(f"{name}: {value!r} is not {kind}") from None
        if not low <= parsed <= high:
            raise SettingError(f"{name}: {parsed} is outside {low}–{high}")
        return parsed

    return parse


def one_of(*choices: str) -> Parser:
    def parse(name: str, value: str) -> str:
        if value not in choices:
            raise SettingError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def pattern(regex: str, explanation: str) -> Parser:
    """The whole value must match `regex`; otherwise `explanation` says what to write."""
    compiled = re.compile(regex)

    def parse(name: str, value: str) -> str:
        if not compiled.fullmatch(value):
            raise SettingError(f"{name}: {explanation}")
        return value

    return parse


def existing_file(name: str, value: str) -> str:
    if not Path(value).is_file():
        raise SettingError(f"{name}: file {value!r} does not exist")
    return value


def hours_span(name: str, value: str) -> str:
    """`21:00-08:00`, or empty for none."""
    if value:
        try:
            start, end = value.split("-")
            time.fromisoformat(start.strip())
            time.fromisoformat(end.strip())
        except ValueError:
            raise SettingError(
                f"{name}: {value!r} must look like 21:00-08:00, or be empty"
            ) from None
    return value


@dataclass(frozen=True)
class Spec:
    """One `MINYI_*` setting: `field` is its short name (also accepted in minyi.toml)."""

    env: str
    parse: Parser = text
    default: Any = None

    @property
    def field(self) -> str:
        return self.env.removeprefix("MINYI_").lower()


def read(specs: tuple[Spec, ...], raw: Mapping[str, str]) -> dict[str, Any]:
    """Each spec's parsed value (its default when unset or empty), by field name."""
    values: dict[str, Any] = {}
    for spec in specs:
        given = raw.get(spec.env)
        if given is None or (given.strip() == "" and spec.default is None):
            values[spec.field] = spec.default
        else:
            values[spec.field] = spec.parse(spec.env, given.strip())
    return values


def require(values: Mapping[str, Any], field: str, env: str, why: str) -> Any:
    """The value of a setting another one needs, or a SettingError saying why it is needed."""
    value = values.get(field)
    if value in (None, "", ()):
        raise SettingError(f"{env}: required {why}")
    return value
