"""人工服务: record the request for staff and tell the citizen when people answer."""

from __future__ import annotations

from ..commands import RequestHandoff
from .base import Context, Outcome


def request(ctx: Context, reason: str = "citizen") -> Outcome:
    summary = str(ctx.state.data.get("description") or ctx.inbound.text or "")[:200]
    ctx.state.set_aside()
    outcome = Outcome(commands=[RequestHandoff(reason=reason, summary=summary)])
    hours = ctx.office.staff
    if hours.open_at(ctx.local(ctx.now)):
        outcome.say(ctx.t("handoff.in_hours"))
    else:
        outcome.say(ctx.t("handoff.off_hours", hours=hours.text(ctx.lang)))
    return outcome.say(ctx.t("handoff.wait"))
