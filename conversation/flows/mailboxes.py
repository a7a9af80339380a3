"""领导信箱: the office's leaders' mailboxes, listed; a letter to one is the petition form's
questions, filed with `mailbox` set and routed where that mailbox sends its letters."""

from __future__ import annotations

from ..cases.routing import Mailbox
from ..messages import Reply
from ..office_forms import free_text_form
from ..validators import choice_number
from . import forms
from .base import Context, Outcome, numbered
from .menu import menu_action

FLOW = "mailbox"
CHOSEN = forms.MAILBOX


async def start(ctx: Context) -> Outcome:
    if not ctx.office.mailboxes:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("mailbox.none"))
    ctx.state.enter(FLOW)
    return Outcome(replies=[_list(ctx)])


async def handle(ctx: Context) -> Outcome | None:
    """A mailbox's number or name; anything the menu knows is the menu's (None)."""
    boxes = ctx.office.mailboxes
    number = choice_number(ctx.inbound.text)
    chosen = boxes[number - 1] if number is not None and 1 <= number <= len(boxes) else None
    if chosen is None and number is None:
        text = ctx.inbound.text.strip()
        named = [b for b in boxes if text and (text in b.name or b.name in text or text == b.key)]
        chosen = named[0] if len(named) == 1 else None  # "信箱" alone names none of them
        if chosen is None and menu_action(ctx) is not None:
            return None
    if chosen is None:
        return (
            Outcome().say(ctx.t("err.choice", n=len(boxes))).extend(Outcome(replies=[_list(ctx)]))
        )
    return write_to(ctx, chosen)


def write_to(ctx: Context, box: Mailbox) -> Outcome:
    """The letter: the office's petition form, remembering whom it is for."""
    form = free_text_form(ctx.office.forms)
    outcome = Outcome().say(ctx.t("mailbox.chosen", name=box.name, leader=box.leader))
    started = forms.start(ctx, form)
    ctx.state.data[CHOSEN] = box.key
    return outcome.extend(started)


def _list(ctx: Context) -> Reply:
    labels = [ctx.t("mailbox.entry", name=b.name, leader=b.leader) for b in ctx.office.mailboxes]
    return Reply(ctx.t("mailbox.list"), numbered(labels))
