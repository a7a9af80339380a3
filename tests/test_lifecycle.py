"""One status setter for every step — the back office's, the citizen's rating and review."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.wiring import Minyi
from conversation.cases.lifecycle import IllegalTransition
from conversation.cases.progress import Progress
from storage import ratings
from storage.lifecycle import advance, record_progress
from storage.models import utcnow
from storage.uow import UnitOfWork

from .conftest import Citizen

ROOT = Path(__file__).resolve().parent.parent


def test_only_advance_sets_a_case_status() -> None:
    setters = []
    for package in ("storage", "bot", "conversation", "channels"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                targets = node.targets if isinstance(node, ast.Assign) else []
                for target in targets:
                    for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if (
                            isinstance(item, ast.Attribute)
                            and item.attr == "status"
                            and isinstance(item.value, ast.Name)
                            and "case" in item.value.id
                        ):
                            setters.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert len(setters) == 1 and setters[0].startswith("storage/lifecycle.py:"), setters


async def _case(runtime: Minyi, *steps: Progress) -> str:
    reply = await Citizen(runtime, sender="lc").file_a_matter()
    code = reply.split("编号是 ")[1].split("，")[0]
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        for step in steps:
            await record_progress(uow, case, step, runtime.deadlines, utcnow())
        await uow.commit()
    return code


REPLIED = (Progress("accepted"), Progress("replied", note="已处理"))


async def test_the_citizen_steps_go_through_the_table(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code = await _case(runtime, *REPLIED)
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None and case.review_due_at is not None
        with pytest.raises(IllegalTransition):
            advance(case, "rated", utcnow())
        assert case.status == "replied"
        rated = await ratings.record_rating(
            uow, case, score=1, scale=3, label="满意", unhappy=False, channel="webchat"
        )
        assert rated is False and case.rating_score is None  # not closed: nothing written
        late = case.review_due_at + timedelta(seconds=1)
        due = runtime.deadlines.review_decision_due(late)
        assert await ratings.request_review(uow, case, due, "sms", late) == "too_late"
        assert case.status == "replied"
        now = case.review_due_at - timedelta(days=1)
        assert await ratings.request_review(uow, case, due, "sms", now) == "requested"
        assert case.status == "review_requested"
        again = await ratings.request_review(uow, case, due, "sms", now)
        assert again == "not_possible"  # review_requested cannot follow itself


async def test_a_case_without_a_reply_cannot_be_reviewed(sqlite_runtime: Minyi) -> None:
    runtime = sqlite_runtime
    code = await _case(runtime, Progress("accepted"))
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(code, for_update=True)
        assert case is not None
        now = utcnow()
        due = runtime.deadlines.review_decision_due(now)
        assert await ratings.request_review(uow, case, due, "sms", now) == "not_possible"
        assert case.status == "accepted"
