"""A filing from another system, checked against the office's own form for its kind with the
conversation's validators: the same questions are required, and a wrong mobile number gets
the sentence the chat would give. Every wrong field is named at once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from conversation import validators
from conversation.cases.deadlines import LegalDeadlines
from conversation.commands import SubmitCase
from conversation.messages import Location, Media
from conversation.office import OfficeConfig
from conversation.office_forms import FORM_ANSWER, KINDS, FormSpec, StepSpec, free_text_form
from conversation.validators import Invalid

# The parts of a filing that are not extra questions of the form.
BUILTIN = frozenset({"category", "description", "location", "photos", "name", "phone"})


@dataclass(frozen=True)
class RawFiling:
    """What the caller sent, as text, before any check (numbers already read as numbers)."""

    kind: str = "petition"
    category: str = ""
    description: str = ""
    location_text: str = ""
    lat: float | None = None
    lng: float | None = None
    name: str = ""
    phone: str = ""
    anonymous: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    language: str = "zh"


@dataclass(frozen=True)
class Filing:
    """A filing that passed: values as the chat would have stored them."""

    kind: str
    category: str
    description: str
    location: dict[str, Any]
    name: str
    phone: str
    answers: dict[str, Any]
    language: str
    anonymous: bool = False


def intake_form(office: OfficeConfig, kind: str) -> FormSpec | None:
    """The form whose rules a filing of `kind` follows: the one a matter written at the menu
    starts for a petition, the first of its kind otherwise."""
    if kind == "petition":
        return free_text_form(office.forms)
    return next((form for form in office.forms.values() if form.kind == kind), None)


def check_filing(office: OfficeConfig, raw: RawFiling) -> Filing | dict[str, str]:
    """The filing, or {field: why} for every field that is wrong (`answers.<field>` for the
    form's extra questions)."""
    lang = raw.language if raw.language in ("zh", "en") else "zh"
    errors: dict[str, str] = {}
    form = intake_form(office, raw.kind) if raw.kind in KINDS else None
    if form is None:
        errors["kind"] = f"must be one of: {', '.join(k for k in KINDS if intake_form(office, k))}"
        return errors
    steps = {step.type: step for step in form.steps if step.type in BUILTIN}

    def explain(invalid: Invalid) -> str:
        return office.catalog.text(lang, invalid.key, **invalid.values)

    def required(step_type: str) -> bool:
        step = steps.get(step_type)
        return step is not None and not step.optional

    category = raw.category.strip()
    if category and office.category(category) is None:
        known = ", ".join(c.key for c in office.categories)
        errors["category"] = f"unknown category {category!r}; the office's are: {known}"
    elif not category and required("category"):
        errors["category"] = "required: one of the office's category keys"

    description_step = steps.get("description")
    description = validators.description(
        raw.description,
        (description_step.min if description_step else 0) or 10,
        (description_step.max if description_step else 0) or 2000,
    )
    if isinstance(description, Invalid):
        errors["description"] = explain(description)

    location: dict[str, Any] | Invalid = {"text": "", "lat": None, "lng": None}
    if (raw.lat is None) != (raw.lng is None):
        errors["location"] = "give both lat and lng, or neither"
    elif raw.lat is not None and raw.lng is not None:
        location = validators.location(
            raw.location_text, Location(raw.lat, raw.lng, raw.location_text)
        )
    elif raw.location_text.strip() or required("location"):
        location = validators.location(raw.location_text, None)
    if isinstance(location, Invalid):
        errors["location"] = explain(location)

    name, phone = raw.name.strip(), raw.phone.strip()
    if raw.anonymous and (name or phone):
        errors["contact"] = "an anonymous filing carries no contact: leave out name and phone"
    elif not raw.anonymous:
        for step_type, value, check in (
            ("name", name, validators.person_name),
            ("phone", phone, validators.phone),
        ):
            if not value and not required(step_type):
                continue
            checked = check(value)
            if isinstance(checked, Invalid):
                errors[step_type] = explain(checked)
            elif step_type == "name":
                name = checked
            else:
                phone = checked

    answers = _answers(form, raw.answers, lang, errors, explain)
    if errors:
        return errors
    assert isinstance(description, str) and isinstance(location, dict)
    return Filing(
        raw.kind, category, description, location, name, phone, answers, lang, raw.anonymous
    )


def submit_command(
    filing: Filing,
    office: OfficeConfig,
    deadlines: LegalDeadlines,
    *,
    origin: str,
    source: str,
    attachments: tuple[Media, ...] = (),
) -> SubmitCase:
    """The filing as the command the conversation's submit gives, for `storage.filing`."""
    location = filing.location
    return SubmitCase(
        origin=origin,
        kind=filing.kind,
        description=filing.description,
        category=filing.category,
        location_text=str(location["text"]),
        lat=location["lat"],
        lng=location["lng"],
        attachments=attachments,
        name=filing.name,
        phone=filing.phone,
        answers=filing.answers,
        source=source,
        language=filing.language,
        risk_words=tuple(office.risk_words_in(filing.description)),
        acceptance_due=deadlines.acceptance_due(datetime.now(UTC)),
        department=office.route(filing.category, filing.description),
        anonymous=filing.anonymous,
    )


def letter(command: SubmitCase, office: OfficeConfig, mailbox: str) -> SubmitCase:
    """The filing as a letter to a leader's mailbox: it starts where the mailbox routes it."""
    box = office.mailbox(mailbox)
    if box is None:
        raise ValueError(f"no mailbox {mailbox!r}")
    return replace(command, mailbox=box.key, department=box.department or command.department)


def _answers(
    form: FormSpec, given: dict[str, str], lang: str, errors: dict[str, str], explain: Any
) -> dict[str, Any]:
    """The form's extra questions (`text`, `choice`), stored as the chat stores them."""
    extra = {step.field: step for step in form.steps if step.type not in BUILTIN}
    for unknown in sorted(set(given) - set(extra)):
        errors[f"answers.{unknown}"] = "not a question of this office's form"
    answers: dict[str, Any] = {FORM_ANSWER: form.name}
    for name, step in extra.items():
        value = (given.get(name) or "").strip()
        if not value:
            if not step.optional:
                errors[f"answers.{name}"] = "required by the office's form"
            answers[name] = None
            continue
        checked = _answer(step, value)
        if isinstance(checked, Invalid):
            errors[f"answers.{name}"] = explain(checked)
        else:
            answers[name] = checked
    return answers


def _answer(step: StepSpec, value: str) -> str | Invalid:
    if step.type == "choice":
        for number, option in enumerate(step.options, start=1):
            if value in (str(number), option("zh"), option("en")):
                return option("zh")  # what the chat stores, whatever language was used
        return Invalid("err.choice", {"n": len(step.options)})
    return validators.free_text(value, step.min or 1, step.max or 500)
