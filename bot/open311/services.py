"""The office's categories as GeoReport services, and the filing form's extra questions as
each service's attributes (one form serves every category)."""

from __future__ import annotations

from typing import Any

from bot.api.filing_form import BUILTIN, intake_form
from conversation.office import Category, OfficeConfig
from conversation.office_forms import StepSpec


def service_list(office: OfficeConfig) -> list[dict[str, Any]]:
    has_attributes = bool(_questions(office))
    group = office.catalog.text("zh", "kind.petition")
    return [
        {
            "service_code": category.key,
            "service_name": category.label("zh"),
            "description": _description(category),
            "metadata": has_attributes,
            "type": "realtime",  # the case code is given at once: no token to wait on
            "keywords": ",".join(category.keywords),
            "group": group,
        }
        for category in office.categories
        if category.open311
    ]


def service_definition(office: OfficeConfig, category: Category) -> dict[str, Any]:
    return {
        "service_code": category.key,
        "attributes": [_attribute(order, step) for order, step in enumerate(_questions(office), 1)],
    }


def _questions(office: OfficeConfig) -> list[StepSpec]:
    form = intake_form(office, "petition")
    return [step for step in form.steps if step.type not in BUILTIN] if form else []


def _attribute(order: int, step: StepSpec) -> dict[str, Any]:
    choice = step.type == "choice"
    attribute: dict[str, Any] = {
        "variable": True,
        "code": step.field,
        "datatype": "singlevaluelist" if choice else "string",
        "required": not step.optional,
        "datatype_description": None if choice else f"1-{step.max or 500} characters",
        "order": order,
        "description": step.label("zh") if step.label else step.field,
    }
    if choice:
        # The key is the option's number, as a citizen would send it; its text works too.
        attribute["values"] = [
            {"key": str(n), "name": option("zh")} for n, option in enumerate(step.options, 1)
        ]
    return attribute


def _description(category: Category) -> str:
    english = category.label("en")
    label = category.label("zh")
    return f"{label}（{english}）" if english and english != label else label
