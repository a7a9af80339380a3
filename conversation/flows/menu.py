"""The main menu of CONTRACTS.md, from the flow table: numbers and words both pick an entry."""

from __future__ import annotations

from ..messages import Choice, Reply
from ..validators import choice_number, normalize
from .base import Context, Flow

# What a follow-only channel (SMS) offers from the menu: looking up and rating one's cases; the
# case page then offers 补充 and 催办.
FOLLOW_FLOWS = frozenset({"status", "rating"})


def menu_choices(ctx: Context) -> tuple[Choice, ...]:
    return tuple(
        Choice(entry.key, entry.text(ctx.t))
        for entry, flow in ctx.flows.entries
        if not ctx.follow_only or flow.name in FOLLOW_FLOWS
    )


def elsewhere(ctx: Context, key: str = "sms.file_elsewhere") -> Reply:
    """On a follow-only channel: where to file, or to reach a person, instead."""
    office = ctx.office
    return Reply(
        ctx.t(
            key,
            online=office.online(ctx.lang),
            hotline=office.hotline,
            hours=office.staff.text(ctx.lang),
        )
    )


def menu_reply(ctx: Context, greeting: bool = False, lead: str = "") -> Reply:
    """The menu as one message, after an optional first line (why we are back at the menu)."""
    if ctx.follow_only:
        office = ctx.office
        text = ctx.t(
            "sms.menu",
            office=office.name(ctx.lang),
            online=office.online(ctx.lang),
            hotline=office.hotline,
        )
        return Reply(lead + "\n" + text if lead else text, menu_choices(ctx))
    text = ctx.t("greeting", office=ctx.office.name(ctx.lang)) if greeting else ctx.t("menu")
    draft = ctx.state.draft
    form = ctx.flows.get(draft.get("flow", "")) if draft else None
    if form is not None and form.menu is not None:
        text = ctx.t("menu.draft", key=form.menu.key) + "\n" + text
    if lead:
        text = lead + "\n" + text
    return Reply(text, menu_choices(ctx))


def menu_action(ctx: Context) -> Flow | None:
    """The flow the message picks from the menu, or None."""
    word = normalize(ctx.inbound.text)
    number = choice_number(word)
    # 四, ４ and 第4项 pick entry 4 as the plain digit does.
    return ctx.flows.chosen(str(number) if number is not None else word, ctx.t)
