"""A form left half-filled is offered back: continue where it stopped, start again, or drop it."""

from __future__ import annotations

from . import forms
from .base import Context, Outcome, numbered, pick
from .menu import menu_reply

FLOW = "resume"


def offer(ctx: Context) -> Outcome:
    """Set the form in progress aside (if any) and ask what to do with the draft."""
    ctx.set_aside()
    draft = ctx.state.draft or {}
    form = ctx.office.forms.get(draft.get("flow", ""))
    if form is None:
        ctx.state.draft = None
        return Outcome(replies=[menu_reply(ctx)])
    step = forms.step_label(ctx, form, draft.get("step") or form.steps[0].field)
    ctx.state.enter(FLOW)
    return Outcome().say(ctx.t("resume.ask", step=step), numbered(_labels(ctx)))


async def handle(ctx: Context) -> Outcome:
    state = ctx.state
    draft = state.draft or {}
    form = ctx.office.forms.get(draft.get("flow", ""))
    choice = pick(ctx, _labels(ctx))
    if form is None or choice == 2:
        state.draft = None
        state.to_menu()
        return Outcome(replies=[menu_reply(ctx)])
    if choice == 0:
        state.enter(form.name, draft.get("step", ""), draft.get("data"))
        state.draft = None
        return forms.resume(ctx, form)
    if choice == 1:
        return forms.start(ctx, form)
    return (
        Outcome()
        .say(ctx.t("err.choice", n=3))
        .say(
            ctx.t("resume.ask", step=forms.step_label(ctx, form, draft.get("step", ""))),
            numbered(_labels(ctx)),
        )
    )


def _labels(ctx: Context) -> list[str]:
    return [ctx.t("resume.continue"), ctx.t("resume.restart"), ctx.t("resume.drop")]
