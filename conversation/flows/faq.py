"""常见问题: questions and answers from the office file, found by number or keywords."""

from __future__ import annotations

from ..messages import Reply
from ..validators import choice_number
from .base import Context, Outcome, numbered


def start(ctx: Context) -> Outcome:
    entries = ctx.office.faq
    if not entries:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("faq.empty"))
    ctx.state.enter("faq")
    return Outcome(replies=[_list(ctx)])


def handle(ctx: Context) -> Outcome:
    entries = ctx.office.faq
    number = choice_number(ctx.inbound.text)
    index = number - 1 if number is not None and 1 <= number <= len(entries) else None
    if index is None and number is None:
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
