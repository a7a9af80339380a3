"""One case as its citizen reads it: what it is, every step as a dated sentence, the next
deadline, and what they can do now (补充 / 催办 / 评价 / 申请复查) as numbered choices.

A long history shows its latest steps first; `更多` pages back through the earlier ones.
"""

from __future__ import annotations

from .. import rating
from ..cases.citizen import ANSWERED, RATABLE, URGEABLE
from ..cases.kinds import SURVEYED_KINDS
from ..catalog import ZH
from ..messages import Choice, Reply
from ..ports import CaseStep, CaseView
from .base import Context, Outcome

FLOW = "status"
PAGE = 8  # history lines shown at once
# What a citizen may do on their own case, in the order offered.
ACTIONS = ("supplement", "urge", "rate", "review")


def actions(ctx: Context, case: CaseView) -> list[str]:
    """What the citizen can do now on this case."""
    window_open = case.review_until is not None and ctx.now <= case.review_until
    can = {
        "supplement": case.status in URGEABLE or (case.status in ANSWERED and window_open),
        "urge": case.status in URGEABLE,
        "rate": case.status in RATABLE and case.kind in SURVEYED_KINDS,
        "review": case.status in ANSWERED and window_open,
    }
    return [action for action in ACTIONS if can[action]]


def show(ctx: Context, case: CaseView) -> Outcome:
    """The case's page; the conversation stays on it for `更多` and the numbered actions."""
    start = max(0, len(case.history) - PAGE)
    offered = actions(ctx, case)
    ctx.state.enter(FLOW, "case", {"code": case.code, "before": start, "actions": offered})
    text = detail(ctx, case)
    if case.history:
        text += ctx.t("status.history") + history(ctx, case.history[start:], start)
    return Outcome(replies=[with_actions(ctx, text, case, offered)])


def earlier(ctx: Context, case: CaseView, before: int) -> Outcome:
    start = max(0, before - PAGE)
    ctx.state.data["before"] = start
    text = ctx.t("status.earlier", code=case.code) + history(ctx, case.history[start:before], start)
    offered = ctx.state.data.get("actions") or []
    return Outcome(replies=[with_actions(ctx, text, case, offered)])


def with_actions(ctx: Context, text: str, case: CaseView, offered: list[str]) -> Reply:
    if not offered:
        return Reply(text + "\n\n" + ctx.t("status.hint"))
    choices = tuple(
        Choice(str(i), ctx.t(f"status.action.{action}")) for i, action in enumerate(offered, 1)
    )
    return Reply(text + "\n\n" + ctx.t("status.can"), choices)


def history(ctx: Context, steps: tuple[CaseStep, ...], start: int) -> str:
    lines = [f"\n{ctx.day(step.at)} {sentence(ctx, step)}" for step in steps]
    if start > 0:
        lines.append("\n" + ctx.t("status.more"))
    return "".join(lines)


def sentence(ctx: Context, step: CaseStep) -> str:
    """What one step of the case means to the citizen, in their language."""
    key = f"history.{step.type}"
    if step.department and f"{key}.by" in ZH:
        key += ".by"  # who took the step, where the office says it
    if key not in ZH:
        # A step this version has no sentence for yet still says that something happened.
        key = "history.other.note" if step.note else "history.other"
    return ctx.t(
        key,
        department=ctx.office.departments.name(step.department) or ctx.t("history.department"),
        note=step.note,
        reason=step.reason,
        rating=_rating(ctx, step),
        days=step.days or "",
        outcome=ctx.t(f"outcome.{step.outcome}") if step.outcome else "",
    )


def _rating(ctx: Context, step: CaseStep) -> str:
    if step.scale in rating.SCALES and step.score is not None and 1 <= step.score <= step.scale:
        return rating.labels(ctx.t, step.scale)[step.score - 1]
    return step.rating


def summary(ctx: Context, case: CaseView) -> str:
    text = ctx.t(
        "status.item",
        code=case.code,
        category=_category(ctx, case),
        status=ctx.t(f"status.{case.status}"),
        updated=ctx.day(case.updated_at),
    )
    return text + _due(ctx, case)


def detail(ctx: Context, case: CaseView) -> str:
    text = ctx.t(
        "status.detail",
        code=case.code,
        category=_category(ctx, case),
        status=ctx.t(f"status.{case.status}"),
        created=ctx.day(case.created_at),
    )
    text += _due(ctx, case)
    if case.review_until is not None and case.status in ANSWERED and ctx.now <= case.review_until:
        text += ctx.t("status.review_until", date=ctx.day(case.review_until))
    return text


def _category(ctx: Context, case: CaseView) -> str:
    category = ctx.office.category(case.category)
    if category is not None:
        return category.label(ctx.lang)
    return ctx.t(f"kind.{case.kind}") if f"kind.{case.kind}" in ZH else case.category


def _due(ctx: Context, case: CaseView) -> str:
    deadline = case.next_deadline
    if deadline is None:
        return ""
    label = deadline.label or ctx.t(f"due.{deadline.kind}")
    return ctx.t("status.due", label=label, date=ctx.day(deadline.due_at))
