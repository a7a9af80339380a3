"""The forms an office declares (`[forms.<name>]`): questions, kind, menu entry, confirmation."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from .catalog import Texts
from .office_text import LocalText, OfficeConfigError, local_text
from .validators import normalize

STEP_TYPES = ("category", "description", "location", "photos", "name", "phone", "text", "choice")
# What a filed case is, whichever form filed it: a petition runs the legal time limits, a
# suggestion counts in none of the satisfaction measures.
KINDS = ("petition", "suggestion")
# The case keeps the name of the form that filed it under this key of its `answers`.
FORM_ANSWER = "form"
CONFIRMATION_VALUES = frozenset({"code", "due"})
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
EVENT = re.compile(r"[a-z0-9_-]{1,64}")
MENU_KEY = re.compile(r"[0-9]{1,2}")


@dataclass(frozen=True)
class MenuEntry:
    """How the main menu reaches a flow.

    `key` is what the citizen sends; `label` is a catalog key (built-in entries) or the office's
    own words; `synonyms` are other words that pick it; `event` is what a channel's own menu
    button sends for it (a WeChat click key).
    """

    key: str
    label: str | LocalText
    synonyms: frozenset[str] = frozenset()
    event: str = ""

    def text(self, t: Texts) -> str:
        """The label in the conversation's language."""
        return self.label(t.lang) if isinstance(self.label, LocalText) else t(self.label)

    @property
    def order(self) -> tuple[bool, int]:
        """Menu order: by number, with 0 (a person) last as on a phone line."""
        return self.key == "0", int(self.key)


@dataclass(frozen=True)
class StepSpec:
    """One question of a form. `type` picks the validator; `options` feed a `choice` step."""

    field: str
    type: str
    optional: bool = False
    min: int = 0
    max: int = 0
    prompt: LocalText | None = None
    label: LocalText | None = None
    options: tuple[LocalText, ...] = ()


@dataclass(frozen=True)
class FormSpec:
    """A form: its questions in order, the kind of case it files, and what the office declared
    of its menu entry and confirmation (None: the flow's default)."""

    name: str
    kind: str
    steps: tuple[StepSpec, ...]
    menu: MenuEntry | None = None
    confirmation: LocalText | None = None

    def index(self, field_name: str) -> int:
        for i, step in enumerate(self.steps):
            if step.field == field_name:
                return i
        raise KeyError(field_name)

    def has(self, field_name: str) -> bool:
        return any(step.field == field_name for step in self.steps)

    @property
    def takes_free_text(self) -> bool:
        return self.kind == "petition" and any(s.type == "description" for s in self.steps)


def parse_forms(data: dict[str, Any]) -> dict[str, FormSpec]:
    """Every `[forms.<name>]`, checked; free text at the menu needs a petition form to start.

    Menu entries that clash (with each other or with the built-in flows) are refused where the
    flow table is built, which knows them all."""
    forms = {name: _parse_form(name, spec) for name, spec in data.items()}
    if not any(form.takes_free_text for form in forms.values()):
        raise OfficeConfigError(
            'a form with kind = "petition" and a description step is needed: '
            "a matter written at the menu starts it"
        )
    return forms


def free_text_form(forms: dict[str, FormSpec]) -> FormSpec:
    """The form a matter written at the menu starts: the first petition form asking for one."""
    return next(form for form in forms.values() if form.takes_free_text)


def _parse_form(name: str, spec: Any) -> FormSpec:
    if not NAME.fullmatch(name):
        raise OfficeConfigError(f"forms.{name}: a form's name is lower-case letters, digits and _")
    if not isinstance(spec, dict):
        raise OfficeConfigError(f"forms.{name} must be a table")
    steps = tuple(
        _parse_step(f"forms.{name}.steps[{i}]", raw) for i, raw in enumerate(spec.get("steps", []))
    )
    if not steps:
        raise OfficeConfigError(f"forms.{name} has no steps")
    if len({s.field for s in steps}) != len(steps):
        raise OfficeConfigError(f"forms.{name}: two steps share one field")
    # Without a kind a form files petitions; office files older than this rule named the
    # suggestion form's kind after it, and still do.
    kind = spec.get("kind", name if name in KINDS else "petition")
    if kind not in KINDS:
        raise OfficeConfigError(f"forms.{name}.kind must be one of {', '.join(KINDS)}")
    menu = _parse_menu(name, spec["menu"]) if "menu" in spec else None
    confirmation = None
    if "confirmation" in spec:
        confirmation = local_text(spec["confirmation"], f"forms.{name}.confirmation")
        _check_values(f"forms.{name}.confirmation", confirmation)
    return FormSpec(name, kind, steps, menu, confirmation)


def _parse_step(where: str, raw: Any) -> StepSpec:
    if not isinstance(raw, dict):
        raise OfficeConfigError(f'{where} must be a table such as {{ field = "…", type = "…" }}')
    step_type = raw.get("type")
    if step_type not in STEP_TYPES:
        raise OfficeConfigError(f"{where}.type must be one of {', '.join(STEP_TYPES)}")
    field_name = raw.get("field")
    if not isinstance(field_name, str) or not field_name.isidentifier():
        raise OfficeConfigError(f'{where}.field must be a plain name such as "description"')
    if field_name == FORM_ANSWER:
        raise OfficeConfigError(
            f'{where}.field "{FORM_ANSWER}" is taken: the case keeps the form\'s name there'
        )
    if step_type in ("text", "choice") and "label" not in raw:
        raise OfficeConfigError(f"{where} needs a label (shown in the summary)")
    options = tuple(local_text(o, f"{where}.options") for o in raw.get("options", []))
    if step_type == "choice" and not options:
        raise OfficeConfigError(f"{where} is a choice and needs options")
    return StepSpec(
        field=field_name,
        type=step_type,
        optional=bool(raw.get("optional", False)),
        min=int(raw.get("min", 0)),
        max=int(raw.get("max", 0)),
        prompt=local_text(raw["prompt"], f"{where}.prompt") if "prompt" in raw else None,
        label=local_text(raw["label"], f"{where}.label") if "label" in raw else None,
        options=options,
    )


def _parse_menu(name: str, raw: Any) -> MenuEntry:
    where = f"forms.{name}.menu"
    if not isinstance(raw, dict):
        raise OfficeConfigError(f'{where} must be a table such as {{ key = "6", label = "表扬" }}')
    key = str(raw.get("key", ""))
    if not MENU_KEY.fullmatch(key):
        raise OfficeConfigError(f'{where}.key must be the number citizens send, such as "6"')
    synonyms = raw.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s for s in synonyms):
        raise OfficeConfigError(f'{where}.synonyms must be a list of words, such as ["表扬"]')
    event = str(raw.get("event", name))
    if not EVENT.fullmatch(event):
        raise OfficeConfigError(f"{where}.event must be lower-case letters, digits, _ or -")
    return MenuEntry(
        key=key,
        label=local_text(raw.get("label"), f"{where}.label"),
        synonyms=frozenset(normalize(s) for s in synonyms),
        event=event,
    )


def _check_values(where: str, text: LocalText) -> None:
    """Only the values a confirmation is given may appear in it, so it never fails to format."""
    for variant in (text.zh, text.en):
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(variant) if f is not None}
        except ValueError:
            names = {"?"}
        if not names <= CONFIRMATION_VALUES:
            raise OfficeConfigError(
                f"{where} may name only {{code}} and {{due}}; write other braces as {{{{ }}}}"
            )
