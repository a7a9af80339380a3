"""人工服务: record the request for staff and tell the citizen when people answer."""

from __future__ import annotations

from ..commands import RequestHandoff
from .base import SAID_MAX, Context, Outcome


async def request(ctx: Context, reason: str = "citizen") -> Outcome:
    """Staff are told the matter, never the "0" or "人工" that asked for them: the form's
    description when one is being filled, else the last words the citizen wrote about it, and
    the case the citizen was looking at (storage falls back to their latest)."""
    data = ctx.state.data
    summary = str(data.get("description") or "")[:SAID_MAX] if ctx.in_form else ""
    case_code = "" if ctx.in_form else str(data.get("code") or "")
    ctx.set_aside()
    command = RequestHandoff(reason=reason, summary=summary or ctx.state.said, case_code=case_code)
    outcome = Outcome(commands=[command])
    hours = ctx.office.staff
    if hours.open_at(ctx.local(ctx.now)):
        outcome.say(ctx.t("handoff.in_hours"))
    else:
        outcome.say(ctx.t("handoff.off_hours", hours=hours.text(ctx.lang)))
    return outcome.say(ctx.t("handoff.wait"))
