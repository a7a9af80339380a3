"""Proof before a case that is not the asker's own: its 查询码, or a 验证码 texted to the mobile
on file. Passed, the case's page follows, and this chat is not asked again.

Unknown codes get the very same questions and answers as real ones (storage/proof.py).
"""

from __future__ import annotations

from datetime import datetime

from ..cases.proof import SMS_CODE_LIFETIME, ProofAnswer, read_secret
from ..codes import find_case_code
from ..commands import ProveCase, Results, SendProofCode
from ..messages import Choice, Reply
from ..ports import CaseView
from ..validators import choice_number
from . import case_page
from .base import Context, Outcome
from .menu import menu_action
from .small_talk import small_talk

FLOW = "proof"
SEND = frozenset(
    {"验证码", "发验证码", "发送验证码", "短信验证", "重发", "重新发送", "sms", "code"}
)


def ask(ctx: Context, code: str) -> Outcome:
    ctx.state.enter(FLOW, "", {"code": code})
    return Outcome(replies=[_prompt(ctx, code)])


def _prompt(ctx: Context, code: str) -> Reply:
    if not ctx.sms_proof:
        return Reply(ctx.t("proof.ask.query_only", code=code))
    return Reply(ctx.t("proof.ask", code=code), (Choice("1", ctx.t("proof.send")),))


async def handle(ctx: Context) -> Outcome | None:
    """`1` texts a 验证码; a 6-digit or 8-character answer is tried; a case code, a menu entry
    or a greeting is the main menu's (None)."""
    code = str(ctx.state.data.get("code") or "")
    word = ctx.word
    if ctx.sms_proof and (word in SEND or choice_number(ctx.inbound.text) == 1):
        return _send(ctx, code)
    secret = read_secret(ctx.inbound.text) if ctx.inbound.kind == "text" else None
    if secret is not None:
        how, value = secret
        return _try(ctx, code, how, value)
    if menu_action(ctx) is not None or small_talk(ctx.inbound.text):
        return None
    if find_case_code(ctx.inbound.text) is not None:
        return None  # another code: the menu looks it up
    return Outcome(replies=[Reply(ctx.t("proof.unclear")), _prompt(ctx, code)])


def _send(ctx: Context, code: str) -> Outcome:
    def sent(results: Results) -> list[Reply]:
        answer = _answer(results)
        if answer.outcome == "sent":
            minutes = int(SMS_CODE_LIFETIME.total_seconds() // 60)
            return [Reply(ctx.t("proof.sent", tail=answer.tail, minutes=minutes))]
        if answer.outcome == "throttled":
            return [Reply(_wait(ctx, answer.retry_at))]
        return [Reply(ctx.t("proof.no_phone", code=code))]

    return Outcome(commands=[SendProofCode(code)], after=sent)


def _try(ctx: Context, code: str, how: str, secret: str) -> Outcome:
    def tried(results: Results) -> list[Reply]:
        answer = _answer(results)
        if answer.outcome == "passed" and isinstance(answer.case, CaseView):
            page = case_page.show(ctx, answer.case)
            return [Reply(ctx.t("proof.passed")), *page.replies]
        if answer.outcome == "throttled":
            return [Reply(_wait(ctx, answer.retry_at))]
        if answer.outcome == "wrong" and how == "sms":
            return [Reply(ctx.t("proof.wrong_sms", left=answer.tries_left))]
        if answer.outcome == "expired":
            return [Reply(ctx.t("proof.expired"))]
        if answer.outcome == "no_code":
            return [Reply(ctx.t("proof.no_code"))]
        return [Reply(ctx.t("proof.wrong_query", code=code))]

    return Outcome(commands=[ProveCase(code, how, secret)], after=tried)


def _answer(results: Results) -> ProofAnswer:
    answer = results.values.get("proof")
    assert isinstance(answer, ProofAnswer)
    return answer


def _wait(ctx: Context, until: datetime | None) -> str:
    local = ctx.local(until or ctx.now)
    return ctx.t("proof.throttled", day=ctx.day(local), time=f"{local:%H:%M}")
