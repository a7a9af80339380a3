"""常见问题: questions and answers from the office file, found by number or keywords."""

from __future__ import annotations

from ..messages import Reply
from ..validators import choice_number
from .base import Context, Outcome, numbered
from .menu import menu_action
from .small_talk import small_talk

FLOW = "faq"


async def start(ctx: Context) -> Outcome:
    if not ctx.office.faq:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("faq.empty"))
    ctx.state.enter(FLOW)
    return Outcome(replies=[_list(ctx)])


async def handle(ctx: Context) -> Outcome | None:
    """A question's number or words; a menu word (not a number: those pick questions here) or a
    greeting is the main menu's (None)."""
    entries = ctx.office.faq
    number = choice_number(ctx.inbound.text)
    if number is None and (menu_action(ctx) is not None or small_talk(ctx.inbound.text)):
        return None
    index = number - 1 if number is not None and 1 <= number <= len(entries) else None
    if index is None and number is None:
        ctx.remember_words()
        index = _best_match(ctx)
    if index is None:
        return Outcome().say(ctx.t("faq.none")).extend(Outcome(replies=[_list(ctx)]))
    entry = entries[index]
    return Outcome().say(
        f"{entry.question(ctx.lang)}\n{entry.answer(ctx.lang)}\n\n{ctx.t('faq.more')}"
    )


def _list(ctx: Context) -> Reply:
    return Reply(ctx.t("faq.head"), numbered([e.question(ctx.lang) for e in ctx.office.faq]))


def _best_match(ctx: Context) -> int | None:
    text = ctx.inbound.text
    best, best_hits = None, 0
    for i, entry in enumerate(ctx.office.faq):
        hits = sum(1 for word in entry.keywords if word and word in text)
        if hits > best_hits:
            best, best_hits = i, hits
    return best
