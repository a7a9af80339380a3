"""FLOWS: every flow declared once — its name, its handler, whether it is a form, its menu entry.

The engine, the state and the menu consult this table; nothing else lists flows. Forms come
from the office file (`[forms.<name>]`: questions, kind, menu entry, confirmation) and all run
on the form handler, so a new form is the office file alone, or the office file and one module
declared here under the form's name. The two bundled forms are declared here only for the menu
entries citizens know them by (CONTRACTS.md: 1 我要反映, 4 意见建议), which an office may change.
"""

from __future__ import annotations

from dataclasses import replace

from ..catalog import LANGUAGES
from ..office import OfficeConfig
from ..office_forms import MenuEntry, free_text_form
from ..office_text import OfficeConfigError
from ..validators import normalize
from . import faq, forms, handoff, mailboxes, proof, rating, resume, status
from .base import Flow, FlowTable

# A flow that enters itself (status, rating, faq, resume) keeps its name in its module as FLOW;
# the others are named here only.
FLOWS: tuple[Flow, ...] = (
    Flow(
        "filing",
        forms.handle,
        forms.open_form,
        form=True,
        menu=MenuEntry(
            "1",
            "menu.file",
            frozenset({"反映", "我要反映", "投诉", "举报", "反映问题", "report"}),
            "file",
        ),
    ),
    Flow(
        status.FLOW,
        status.handle,
        status.open_status,
        menu=MenuEntry(
            "2",
            "menu.status",
            frozenset({"查询", "进度", "进度查询", "查进度", "status", "progress"}),
            "status",
        ),
    ),
    Flow(
        rating.FLOW,
        rating.handle,
        rating.start,
        menu=MenuEntry("3", "menu.rate", frozenset({"评价", "rate", "rating"}), "rate"),
    ),
    Flow(
        "suggestion",
        forms.handle,
        forms.open_form,
        form=True,
        menu=MenuEntry(
            "4",
            "menu.suggest",
            frozenset({"建议", "意见", "意见建议", "suggestion", "suggest"}),
            "suggest",
        ),
    ),
    Flow(
        faq.FLOW,
        faq.handle,
        faq.start,
        menu=MenuEntry("5", "menu.faq", frozenset({"常见问题", "问题", "faq", "questions"}), "faq"),
    ),
    # Offered when the office file declares leaders' mailboxes (6 stays free for a form of the
    # office's own, as office.toml's example suggests).
    Flow(
        mailboxes.FLOW,
        mailboxes.handle,
        mailboxes.start,
        menu=MenuEntry(
            "7",
            "menu.mailbox",
            frozenset({"领导信箱", "信箱", "书记信箱", "区长信箱", "mailbox"}),
            "mailbox",
        ),
    ),
    # Asking for a person leaves the citizen at the menu: there is no step to continue.
    Flow(
        "handoff",
        open=handoff.request,
        menu=MenuEntry("0", "menu.staff", frozenset({"人工", "人工服务", "staff"}), "staff"),
    ),
    Flow(resume.FLOW, resume.handle),
    # Proof before a case that is not the asker's own: entered from a code, never the menu.
    Flow(proof.FLOW, proof.handle),
)
# A form of the office file that FLOWS does not name: the form handler, its menu entry its own.
FORM = Flow("", forms.handle, forms.open_form, form=True)


def flows_for(office: OfficeConfig) -> FlowTable:
    """FLOWS with the office's forms; a menu entry that two flows would share is refused."""
    declared = {flow.name: flow for flow in FLOWS}
    table = [
        flow
        for flow in FLOWS
        if not flow.form and (flow.name != mailboxes.FLOW or office.mailboxes)
    ]
    for form in office.forms.values():
        flow = declared.get(form.name, FORM)
        menu = form.menu or flow.menu
        if menu is None:
            raise OfficeConfigError(
                f'forms.{form.name}.menu is missing: give it a key and a label, e.g. menu = {{ key = "6", label = "表扬" }}'
            )
        table.append(replace(flow, name=form.name, menu=menu))
    _refuse_shared_entries(table, office)
    return FlowTable(table, free_text=free_text_form(office.forms).name)


def _refuse_shared_entries(table: list[Flow], office: OfficeConfig) -> None:
    """Built-in flows come first, so a clash is always found at a form: name it."""
    owners: dict[tuple[str, str], str] = {}
    for flow in table:
        if flow.menu is None:
            continue
        entry = flow.menu
        labels = {normalize(entry.text(office.catalog.for_language(lang))) for lang in LANGUAGES}
        picks = {("key", entry.key), ("event", entry.event)}
        picks |= {("word", word) for word in entry.synonyms | labels}
        for what, value in sorted(picks):
            owner = owners.setdefault((what, value), flow.name)
            if owner != flow.name:
                raise OfficeConfigError(
                    f"forms.{flow.name}.menu: the {what} {value!r} already picks {owner}; "
                    "choose another"
                )
