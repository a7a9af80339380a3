"""进度查询: a citizen sees only the cases filed from their own channel identity."""

from __future__ import annotations

from ..codes import find_case_code
from ..ports import CaseView
from .base import Context, Outcome


async def open_status(ctx: Context) -> Outcome:
    ctx.state.enter("status")
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
    ctx.state.enter("status")
    inbound = ctx.inbound
    case = await ctx.lookups.case_of(inbound.channel, inbound.sender, code)
    if case is None:
        return Outcome().say(ctx.t("status.not_found", code=code))
    return Outcome().say(_detail(ctx, case) + "\n\n" + ctx.t("status.hint"))


async def handle(ctx: Context) -> Outcome:
    code = find_case_code(ctx.inbound.text)
    if code is None:
        return Outcome().say(ctx.t("status.ask_code"))
    return await lookup(ctx, code)


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
    text += _due(ctx, case)
    if case.history:
        text += ctx.t("status.history")
        for at, _kind, note in case.history[-5:]:
            text += f"\n{ctx.day(at)} {note}"
    return text


def _category(ctx: Context, case: CaseView) -> str:
    category = ctx.office.category(case.category)
    if category is not None:
        return category.label(ctx.lang)
    return ctx.t("menu.suggest") if case.kind == "suggestion" else case.category


def _due(ctx: Context, case: CaseView) -> str:
    deadline = case.next_deadline
    if deadline is None:
        return ""
    label = deadline.label or ctx.t(f"due.{deadline.kind}")
    return ctx.t("status.due", label=label, date=ctx.day(deadline.due_at))
