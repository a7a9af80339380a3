"""进度查询: the asker's cases, one case's page, and what they do from there.

A code that is not the asker's own asks for proof first (flows/proof.py), whether or not such
a case exists: the answer never tells more than the code itself shows.
"""

from __future__ import annotations

from ..codes import find_case_code
from ..ports import CaseView
from . import case_page, follow, proof
from .base import Context, Outcome
from .case_page import FLOW
from .menu import menu_action
from .small_talk import small_talk

MORE = frozenset({"更多", "更早", "more"})


async def open_status(ctx: Context) -> Outcome:
    ctx.state.enter(FLOW)
    inbound = ctx.inbound
    cases = await ctx.lookups.cases_of(inbound.channel, inbound.sender)
    if not cases:
        return Outcome().say(ctx.t("status.none"))
    lines = [ctx.t("status.head")]
    lines += [case_page.summary(ctx, case) for case in cases]
    lines.append(ctx.t("status.hint"))
    return Outcome().say("\n\n".join(lines))


async def lookup(ctx: Context, code: str) -> Outcome:
    """One case by code: its page when it is the asker's, else a request for proof."""
    inbound = ctx.inbound
    case = await ctx.lookups.case_of(inbound.channel, inbound.sender, code)
    if case is None:
        return proof.ask(ctx, code)
    pending = ctx.state.data.get("then") if ctx.state.flow == FLOW else None
    if pending:
        # `催办` said before the code: do it now, on this case.
        return await follow.act(ctx, case, str(pending))
    return case_page.show(ctx, case)


async def handle(ctx: Context) -> Outcome | None:
    """A code, `更多`, an action on the case shown, or else — a menu entry, a greeting — the
    main menu's (None)."""
    code = find_case_code(ctx.inbound.text)
    if code is not None:
        action = follow.word_action(ctx)  # "催办 XF…" on a case's page: the action, not the page
        if action is not None:
            return await follow.from_menu(ctx, action)
        return await lookup(ctx, code)
    step, data = ctx.state.step, ctx.state.data
    if step == follow.SUPPLEMENT:
        return await follow.take_supplement(ctx)
    if step == "case" and data.get("code"):
        if ctx.word in MORE:
            return await _earlier(ctx)
        chosen = follow.chosen(ctx, list(data.get("actions") or []))
        if chosen is not None:
            case = await _shown(ctx)
            if case is not None:
                return await follow.act(ctx, case, chosen)
    if menu_action(ctx) is not None or small_talk(ctx.inbound.text):
        return None
    return Outcome().say(ctx.t("status.ask_code"))


async def _shown(ctx: Context) -> CaseView | None:
    inbound = ctx.inbound
    return await ctx.lookups.case_of(inbound.channel, inbound.sender, str(ctx.state.data["code"]))


async def _earlier(ctx: Context) -> Outcome:
    before = int(ctx.state.data.get("before") or 0)
    case = await _shown(ctx)
    if case is None or before <= 0:
        return Outcome().say(ctx.t("status.no_more") + "\n" + ctx.t("status.hint"))
    return case_page.earlier(ctx, case, before)
