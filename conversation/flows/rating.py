"""评价: rate a closed case in the chat; an unhappy rating asks for the reason."""

from __future__ import annotations

from .. import rating
from ..commands import AddRatingComment, RecordRating
from ..messages import Reply
from .base import SKIP, Context, Outcome, numbered, pick


async def start(ctx: Context) -> Outcome:
    inbound = ctx.inbound
    cases = await ctx.lookups.ratable_cases(inbound.channel, inbound.sender)
    if not cases:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("rate.none"))
    if len(cases) == 1:
        return ask_score(ctx, cases[0].code)
    ctx.state.enter("rating", "which", {"codes": [c.code for c in cases]})
    return Outcome().say(ctx.t("rate.which"), numbered([c.code for c in cases]))


def ask_score(ctx: Context, code: str) -> Outcome:
    ctx.state.enter("rating", "score", {"code": code})
    labels = rating.labels(ctx.t, ctx.rating_scale)
    return Outcome().say(ctx.t("rate.ask", code=code), numbered(labels))


def handle(ctx: Context) -> Outcome:
    step, data = ctx.state.step, ctx.state.data
    if step == "which":
        codes = data.get("codes", [])
        index = pick(ctx, codes)
        if index is None:
            return Outcome().say(ctx.t("err.choice", n=len(codes)), numbered(codes))
        return ask_score(ctx, codes[index])
    if step == "score":
        return _on_score(ctx, data["code"])
    return _on_comment(ctx, data["code"])


def _on_score(ctx: Context, code: str) -> Outcome:
    scale = ctx.rating_scale
    labels = rating.labels(ctx.t, scale)
    index = pick(ctx, labels)
    if index is None:
        return Outcome(
            replies=[
                Reply(ctx.t("err.choice", n=scale)),
                Reply(ctx.t("rate.ask", code=code), numbered(labels)),
            ]
        )
    score = index + 1
    command = RecordRating(code, score, rating.zh_label(scale, score), scale)
    unhappy = rating.is_unhappy(scale, score)
    ctx.state.enter("rating", "comment", {"code": code, "unhappy": unhappy})
    return Outcome(commands=[command]).say(
        ctx.t("rate.unhappy_reason" if unhappy else "rate.comment")
    )


def _on_comment(ctx: Context, code: str) -> Outcome:
    ctx.state.to_menu()
    text = ctx.inbound.text.strip()
    if ctx.word in SKIP or not text:
        return Outcome().say(ctx.t("rate.thanks"))
    return Outcome(commands=[AddRatingComment(code, text[:500])]).say(ctx.t("rate.done"))
