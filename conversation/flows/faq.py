"""常见问题: questions and answers from the office file, found by number or by what is typed.

A question typed at the menu (or as the first message) is answered when it matches an entry
surely (conversation/faq_match.py), and the citizen is asked whether that solved it: `2` files
the matter as before. In 常见问题 itself a looser match answers.
"""

from __future__ import annotations

from ..faq_match import AT_MENU, IN_FAQ
from ..messages import Reply
from ..validators import choice_number
from ..validators import description as valid_description
from . import forms
from .base import YES, Context, Outcome, numbered, pick
from .menu import menu_action, menu_reply
from .small_talk import small_talk

FLOW = "faq"
NO = frozenset({"不是", "没有", "没解决", "不对", "我要反映", "no"})


async def start(ctx: Context) -> Outcome:
    if not ctx.office.faq:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("faq.empty"))
    ctx.state.enter(FLOW)
    return Outcome(replies=[_list(ctx)])


def answer_typed(ctx: Context) -> Outcome | None:
    """A question typed at the menu, answered when the FAQ surely has it; None otherwise."""
    index = _match(ctx, AT_MENU)
    if index is None:
        return None
    ctx.state.enter(FLOW, "solved", {"said": ctx.inbound.text.strip()[:2000]})
    entry = ctx.office.faq[index]
    labels = [ctx.t("faq.solved.yes"), ctx.t("faq.solved.no")]
    text = f"{entry.question(ctx.lang)}\n{entry.answer(ctx.lang)}\n\n{ctx.t('faq.solved')}"
    return Outcome(replies=[Reply(text, numbered(labels))])


async def handle(ctx: Context) -> Outcome | None:
    """A question's number or words; a menu word (not a number: those pick questions here) or a
    greeting is the main menu's (None)."""
    if ctx.state.step == "solved":
        solved = _solved(ctx)
        if solved is not None:
            return solved
        ctx.state.to_menu()  # anything else is the menu's: an entry (0 人工 …), a code, words
        return None
    entries = ctx.office.faq
    number = choice_number(ctx.inbound.text)
    if number is None and (menu_action(ctx) is not None or small_talk(ctx.inbound.text)):
        return None
    index = number - 1 if number is not None and 1 <= number <= len(entries) else None
    if index is None and number is None:
        ctx.remember_words()
        index = _match(ctx, IN_FAQ)
    if index is None:
        return Outcome().say(ctx.t("faq.none")).extend(Outcome(replies=[_list(ctx)]))
    entry = entries[index]
    return Outcome().say(
        f"{entry.question(ctx.lang)}\n{entry.answer(ctx.lang)}\n\n{ctx.t('faq.more')}"
    )


def _solved(ctx: Context) -> Outcome | None:
    """`1` it helped: the menu; `2` it did not: the matter is filed as it would have been."""
    labels = [ctx.t("faq.solved.yes"), ctx.t("faq.solved.no")]
    choice = 0 if ctx.word in YES else 1 if ctx.word in NO else pick(ctx, labels)
    if choice == 0:
        ctx.state.to_menu()
        return Outcome(replies=[menu_reply(ctx, lead=ctx.t("faq.glad"))])
    if choice != 1:
        return None
    said = str(ctx.state.data.get("said") or "")
    form = ctx.office.forms[ctx.flows.free_text]
    if isinstance(valid_description(said), str):
        ctx.state.said = said[:200]
        ctx.state.enter(form.name)
        return forms.start_told(ctx, form, said)
    ctx.state.enter(form.name)
    return forms.start(ctx, form)


def _list(ctx: Context) -> Reply:
    return Reply(ctx.t("faq.head"), numbered([e.question(ctx.lang) for e in ctx.office.faq]))


def _match(ctx: Context, threshold: float) -> int | None:
    if ctx.faq is None:
        return None
    found = ctx.faq.best(ctx.inbound.text)
    return found.entry if found is not None and found.score >= threshold else None
