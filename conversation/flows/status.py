"""进度查询: a citizen sees only the cases filed from their own channel identity.

A case's history reads as sentences with their dates (已受理, 交办区住建局办理, 答复：…); a long one
shows its latest steps, and `更多` pages back through the earlier ones.
"""

from __future__ import annotations

from .. import rating
from ..catalog import ZH
from ..codes import find_case_code
from ..ports import CaseStep, CaseView
from .base import Context, Outcome
from .menu import menu_action
from .small_talk import small_talk

FLOW = "status"
PAGE = 8  # history lines shown at once
MORE = frozenset({"更多", "更早", "more"})


async def open_status(ctx: Context) -> Outcome:
    ctx.state.enter(FLOW)
    inbound = ctx.inbound
    cases = await ctx.lookups.cases_of(inbound.channel, inbound.sender)
    if not cases:
        return Outcome().say(ctx.t("status.none"))
    lines = [ctx.t("status.head")]
    lines += [_summary(ctx, case) for case in cases]
    lines.append(ctx.t("status.hint"))
    return Outcome().say("\n\n".join(lines))


async def lookup(ctx: Context, code: str) -> Outcome:
    """One case by code. A code that is not the asker's gets the very same answer as an unknown one."""
    ctx.state.enter(FLOW)
    inbound = ctx.inbound
    case = await ctx.lookups.case_of(inbound.channel, inbound.sender, code)
    if case is None:
        return Outcome().say(ctx.t("status.not_found", code=code))
    start = max(0, len(case.history) - PAGE)
    # The citizen's next `更多` pages back from here; `人工` tells staff which case it is.
    ctx.state.data = {"code": case.code, "before": start}
    text = _detail(ctx, case)
    if case.history:
        text += ctx.t("status.history") + _history(ctx, case.history[start:], start)
    return Outcome().say(text + "\n\n" + ctx.t("status.hint"))


async def handle(ctx: Context) -> Outcome | None:
    """A code, `更多`, or else — a menu entry, a greeting — the main menu's (None)."""
    code = find_case_code(ctx.inbound.text)
    if code is not None:
        return await lookup(ctx, code)
    if ctx.word in MORE and ctx.state.data.get("code"):
        return await _earlier(ctx)
    if menu_action(ctx) is not None or small_talk(ctx.inbound.text):
        return None
    return Outcome().say(ctx.t("status.ask_code"))


async def _earlier(ctx: Context) -> Outcome:
    data = ctx.state.data
    before = int(data.get("before") or 0)
    inbound = ctx.inbound
    case = await ctx.lookups.case_of(inbound.channel, inbound.sender, str(data["code"]))
    if case is None or before <= 0:
        return Outcome().say(ctx.t("status.no_more") + "\n" + ctx.t("status.hint"))
    start = max(0, before - PAGE)
    data["before"] = start
    text = ctx.t("status.earlier", code=case.code)
    text += _history(ctx, case.history[start:before], start)
    return Outcome().say(text + "\n\n" + ctx.t("status.hint"))


def _history(ctx: Context, steps: tuple[CaseStep, ...], start: int) -> str:
    lines = [f"\n{ctx.day(step.at)} {sentence(ctx, step)}" for step in steps]
    if start > 0:
        lines.append("\n" + ctx.t("status.more"))
    return "".join(lines)


def sentence(ctx: Context, step: CaseStep) -> str:
    """What one step of the case means to the citizen, in their language."""
    key = f"history.{step.type}"
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


def _summary(ctx: Context, case: CaseView) -> str:
    text = ctx.t(
        "status.item",
        code=case.code,
        category=_category(ctx, case),
        status=ctx.t(f"status.{case.status}"),
        updated=ctx.day(case.updated_at),
    )
    return text + _due(ctx, case)


def _detail(ctx: Context, case: CaseView) -> str:
    text = ctx.t(
        "status.detail",
        code=case.code,
        category=_category(ctx, case),
        status=ctx.t(f"status.{case.status}"),
        created=ctx.day(case.created_at),
    )
    return text + _due(ctx, case)


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
