"""评价: rate a closed case in the chat; an unhappy rating asks why and offers a review (复查)."""

from __future__ import annotations

from .. import rating
from ..commands import AddRatingComment, RecordRating, RequestReview, Results
from ..messages import Reply
from ..state import ConversationState
from .base import SKIP, YES, Context, Outcome, numbered, pick

FLOW = "rating"


async def start(ctx: Context) -> Outcome:
    inbound = ctx.inbound
    cases = await ctx.lookups.ratable_cases(inbound.channel, inbound.sender)
    if not cases:
        ctx.state.to_menu()
        return Outcome().say(ctx.t("rate.none"))
    if len(cases) == 1:
        return ask_score(ctx, cases[0].code)
    ctx.state.enter(FLOW, "which", {"codes": [c.code for c in cases]})
    return Outcome().say(ctx.t("rate.which"), numbered([c.code for c in cases]))


def await_score(state: ConversationState, code: str) -> None:
    """The next message rates `code` (the survey question was shown, or is being shown)."""
    state.enter(FLOW, "score", {"code": code})


def ask_score(ctx: Context, code: str, invitation: bool = False) -> Outcome:
    await_score(ctx.state, code)
    labels = rating.labels(ctx.t, ctx.rating_scale)
    return Outcome().say(
        ctx.t("rate.invite" if invitation else "rate.ask", code=code), numbered(labels)
    )


async def handle(ctx: Context) -> Outcome:
    step, data = ctx.state.step, ctx.state.data
    if step == "which":
        codes = data.get("codes", [])
        index = pick(ctx, codes)
        if index is None:
            return Outcome().say(ctx.t("err.choice", n=len(codes)), numbered(codes))
        return ask_score(ctx, codes[index])
    if step == "score":
        return _on_score(ctx, data["code"])
    if step == "review":
        return _on_review(ctx, data["code"], data.get("until", ""))
    return await _on_comment(ctx, data["code"], unhappy=bool(data.get("unhappy")))


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
    unhappy = rating.is_unhappy(scale, score)
    command = RecordRating(code, score, rating.zh_label(scale, score), scale, unhappy=unhappy)
    ctx.state.enter(FLOW, "comment", {"code": code, "unhappy": unhappy})
    follow_up = ctx.t("rate.unhappy_reason" if unhappy else "rate.comment")

    def answered(results: Results) -> list[Reply]:
        if not results.values.get("rated"):
            ctx.state.to_menu()
            return [Reply(ctx.t("rate.already"))]
        return [Reply(follow_up)]

    return Outcome(commands=[command], after=answered)


async def _on_comment(ctx: Context, code: str, unhappy: bool) -> Outcome:
    text = ctx.inbound.text.strip()
    outcome = Outcome()
    if ctx.word not in SKIP and text:
        outcome.commands.append(AddRatingComment(code, text[:500]))
        ctx.remember_words()
    if unhappy:
        case = await ctx.lookups.case_of(ctx.inbound.channel, ctx.inbound.sender, code)
        if case is not None and case.review_until is not None and ctx.now <= case.review_until:
            until = ctx.day(case.review_until)
            ctx.state.enter(FLOW, "review", {"code": code, "until": until})
            labels = [ctx.t("rate.review_yes"), ctx.t("rate.review_no")]
            return outcome.say(ctx.t("rate.review_offer", until=until), numbered(labels))
    ctx.state.to_menu()
    return outcome.say(ctx.t("rate.done" if outcome.commands else "rate.thanks"))


def _on_review(ctx: Context, code: str, until: str) -> Outcome:
    labels = [ctx.t("rate.review_yes"), ctx.t("rate.review_no")]
    choice = 0 if ctx.word in YES else pick(ctx, labels)
    if choice is None:
        return (
            Outcome()
            .say(ctx.t("err.choice", n=2))
            .say(ctx.t("rate.review_offer", until=until), numbered(labels))
        )
    ctx.state.to_menu()
    if choice == 1:
        return Outcome().say(ctx.t("rate.thanks"))
    decision_due = ctx.deadlines.review_decision_due(ctx.now)

    def registered(results: Results) -> list[Reply]:
        if results.values.get("review") == "requested":
            return [Reply(ctx.t("rate.review_requested", due=ctx.day(decision_due)))]
        return [Reply(ctx.t("rate.review_too_late", until=until))]

    return Outcome(commands=[RequestReview(code, decision_due)], after=registered)
