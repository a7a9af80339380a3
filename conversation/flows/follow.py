"""What a citizen does on their own case: 补充 (add words, photos or a place), 催办 (urge it),
评价 (rate it) and 申请复查 (ask for a review) — offered as numbered choices on the case's
page, and understood as words anywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..cases.citizen import ANSWERED
from ..codes import find_case_code
from ..commands import RequestReview, Results, Supplement, Urge
from ..messages import Media, Reply
from ..ports import CaseView
from ..validators import choice_number, normalize
from . import case_page, proof, rating
from .base import DONE, Context, Outcome
from .case_page import FLOW

SUPPLEMENT = "supplement"
WORDS: dict[str, frozenset[str]] = {
    "supplement": frozenset({"补充", "补充材料", "补充情况", "我要补充", "supplement", "add"}),
    "urge": frozenset({"催办", "催一下", "催促", "我要催办", "urge"}),
    "rate": frozenset({"评价", "rate"}),
    "review": frozenset({"复查", "申请复查", "review"}),
}


def word_action(ctx: Context) -> str | None:
    """The action a message names by its first words ("催办", "补充 XF…"), if any."""
    text = normalize(ctx.inbound.text)
    code = find_case_code(ctx.inbound.text)
    head = text.split(normalize(code))[0] if code else text
    head = head.strip(" ：:,，")
    return next((action for action, words in WORDS.items() if head in words), None)


def chosen(ctx: Context, offered: list[str]) -> str | None:
    """The action picked on a case's page: its number, or its words."""
    number = choice_number(ctx.inbound.text)
    if number is not None:
        return offered[number - 1] if 1 <= number <= len(offered) else None
    word = ctx.word
    for action in offered:
        if word in WORDS[action] or word == normalize(ctx.t(f"status.action.{action}")):
            return action
    return None


async def from_menu(ctx: Context, action: str) -> Outcome:
    """`催办` (or `补充` …) outside a case's page: on the code given, the one case it fits, or
    after asking which."""
    inbound = ctx.inbound
    code = find_case_code(inbound.text)
    if code is not None:
        case = await ctx.lookups.case_of(inbound.channel, inbound.sender, code)
        return proof.ask(ctx, code) if case is None else await act(ctx, case, action)
    cases = await ctx.lookups.cases_of(inbound.channel, inbound.sender)
    fitting = [case for case in cases if action in case_page.actions(ctx, case)]
    if len(fitting) == 1:
        full = await ctx.lookups.case_of(inbound.channel, inbound.sender, fitting[0].code)
        if full is not None:
            return await act(ctx, full, action)
    if not fitting:
        ctx.state.to_menu()
        return Outcome().say(ctx.t(f"follow.none.{action}"))
    ctx.state.enter(FLOW, "", {"then": action})
    codes = "\n".join(case_page.summary(ctx, case) for case in fitting)
    return Outcome().say(
        ctx.t("follow.which", action=ctx.t(f"status.action.{action}")) + "\n\n" + codes
    )


async def act(ctx: Context, case: CaseView, action: str) -> Outcome:
    if action not in case_page.actions(ctx, case):
        page = case_page.show(ctx, case)
        return Outcome().say(ctx.t(f"follow.not_now.{action}")).extend(page)
    if action == "supplement":
        review = case.status in ANSWERED
        ctx.state.enter(FLOW, SUPPLEMENT, {"code": case.code, "review": review})
        key = "follow.supplement.ask_review" if review else "follow.supplement.ask"
        if ctx.follow_only and not review:
            key = "follow.supplement.ask.sms"  # words only: no photos by SMS
        return Outcome().say(ctx.t(key, code=case.code, online=ctx.office.online(ctx.lang)))
    if action == "urge":
        return _urge(ctx, case)
    if action == "rate":
        return rating.ask_score(ctx, case.code)
    return _review(ctx, case)


async def take_supplement(ctx: Context) -> Outcome:
    """One message added to the case: words, photos or a place; `完成` ends."""
    data, inbound = ctx.state.data, ctx.inbound
    code = str(data.get("code") or "")
    if ctx.word in DONE:
        case = await ctx.lookups.case_of(inbound.channel, inbound.sender, code)
        if case is None:
            ctx.state.to_menu()
            return Outcome().say(ctx.t("follow.supplement.done"))
        return Outcome().say(ctx.t("follow.supplement.done")).extend(case_page.show(ctx, case))
    text = inbound.text.strip() if inbound.kind in ("text", "voice") else ""
    media = tuple(m for m in inbound.media if m.kind in ("image", "video", "voice"))
    location = inbound.location
    if not text and not media and location is None:
        return Outcome().say(ctx.t("follow.supplement.ask", code=code))
    if text and not media and location is None and len(text) < 2:
        return Outcome().say(ctx.t("follow.supplement.short"))
    review_due = ctx.deadlines.review_decision_due(ctx.now) if data.get("review") else None
    command = Supplement(
        code,
        text=text[:2000],
        attachments=tuple(Media(m.kind, m.ref, m.url, m.file) for m in media),
        location_text=(location.label if location else "")[:200],
        lat=location.lat if location else None,
        lng=location.lng if location else None,
        review_decision_due=review_due,
    )

    def added(results: Results) -> list[Reply]:
        outcome = results.values.get("supplement")
        if outcome == "review":
            data["review"] = False  # the review is asked; more words are plain 补充
            assert review_due is not None
            return [Reply(ctx.t("follow.supplement.review", code=code, due=ctx.day(review_due)))]
        if outcome == "added":
            return [Reply(ctx.t("follow.supplement.added", code=code))]
        ctx.state.to_menu()
        return [Reply(ctx.t(f"follow.supplement.{outcome}", code=code))]

    return Outcome(commands=[command], after=added)


def _urge(ctx: Context, case: CaseView) -> Outcome:
    every = timedelta(hours=ctx.office.urge_every_hours)

    def urged(results: Results) -> list[Reply]:
        outcome, value = results.values.get("urge") or ("not_open", None)
        if outcome == "urged":
            return [Reply(ctx.t("follow.urged", code=case.code, n=value))]
        if outcome == "too_soon" and isinstance(value, datetime):
            local = ctx.local(value)
            return [Reply(ctx.t("follow.too_soon", day=ctx.day(local), time=f"{local:%H:%M}"))]
        return [Reply(ctx.t("follow.not_now.urge"))]

    return Outcome(commands=[Urge(case.code, every)], after=urged)


def _review(ctx: Context, case: CaseView) -> Outcome:
    decision_due = ctx.deadlines.review_decision_due(ctx.now)
    until = ctx.day(case.review_until) if case.review_until else ""

    def registered(results: Results) -> list[Reply]:
        if results.values.get("review") == "requested":
            return [Reply(ctx.t("rate.review_requested", due=ctx.day(decision_due)))]
        return [Reply(ctx.t("rate.review_too_late", until=until))]

    return Outcome(commands=[RequestReview(case.code, decision_due)], after=registered)
