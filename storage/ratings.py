"""Satisfaction and review, however they arrive (chat or SMS): recorded once, alerted, reopened.

A rating is taken only from a closed case and only once (closed → rated), so `case.rated` is
published exactly once. An unhappy rating pages staff. A review (复查) may be asked within the
window the law gives after the reply; it reopens the case and opens a new survey later. Both
move the case through `lifecycle.advance`, as the transition table allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm.attributes import instance_state

from conversation.cases.lifecycle import IllegalTransition, ReviewWindowClosed

from .lifecycle import advance
from .models import Case, Survey, utcnow
from .surveys import open_survey
from .uow import UnitOfWork

COMMENT_WINDOW = timedelta(hours=24)  # free text this soon after a rating becomes its comment

# What `record_rating` changes on a case and on its survey: `write_rated` writes these.
RATED_CASE = (
    "status",
    "rating_score",
    "rating_scale",
    "rating_label",
    "rating_comment",
    "rating_channel",
    "rated_at",
    "updated_at",
)
RATED_SURVEY = ("status", "answered_at", "answered_via", "score", "comment_until")


async def record_rating(
    uow: UnitOfWork,
    case: Case,
    *,
    score: int,
    scale: int,
    label: str,
    unhappy: bool,
    channel: str,
    comment: str = "",
    now: datetime | None = None,
    survey: Survey | None = None,
) -> bool:
    """Rate a closed case; False (and nothing written) when it is not closed any more.

    `survey` is the case's open survey when the caller has it already (SMS replies do)."""
    now = now or utcnow()
    try:
        advance(case, "rated", now)
    except IllegalTransition:
        return False
    case.rating_score, case.rating_scale, case.rating_label = score, scale, label
    case.rating_comment, case.rating_channel, case.rated_at = comment, channel, now
    survey = survey or await open_survey(uow, case)
    if survey is not None:
        survey.status, survey.answered_at, survey.answered_via, survey.score = (
            "answered",
            now,
            channel,
            score,
        )
        survey.comment_until = now + COMMENT_WINDOW
    rating = {
        "score": score,
        "scale": scale,
        "label": label,
        "comment": comment,
        "channel": channel,
        "at": uow.iso(now),
    }
    event = await uow.events.append(case, "rated", f"citizen:{channel}", rating, at=now)
    await uow.outbox.add("case.rated", case.code, rating)
    if unhappy:
        await uow.notifications.add(
            f"staff:unhappy:{case.code}:{event.seq}",
            "staff",
            "unhappy",
            case,
            {"label": label, "comment": comment},
        )
    return True


async def write_rated(uow: UnitOfWork, rows: list[Case | Survey]) -> None:
    """Write what `record_rating` changed on these cases and surveys (a batch's) by one UPDATE
    per table — `UPDATE … FROM unnest(…)` on PostgreSQL, executemany on SQLite — instead of the
    unit of work's flush, then take them out of the session so no flush writes them again. The
    status is the one `lifecycle.advance` set. Raises before writing when a row was changed in
    a column a rating does not change (the caller's batch then fails and goes one by one)."""
    for row in rows:
        allowed = RATED_CASE if isinstance(row, Case) else RATED_SURVEY
        extra = set(instance_state(row).committed_state) - set(allowed)
        if extra:
            raise ValueError(f"{type(row).__name__} {row.id}: {sorted(extra)} not a rating's")
    for model, columns in ((Case, RATED_CASE), (Survey, RATED_SURVEY)):
        changed = [r for r in rows if isinstance(r, model) and instance_state(r).modified]
        if not changed:
            continue
        table = model.__table__
        assert isinstance(table, Table)
        if uow.db.is_postgres:  # one statement: UPDATE … FROM unnest(one array per column)
            names = ("row_id", *columns)
            types = (table.c.id.type, *(table.c[c].type for c in columns))
            arrays = [
                bindparam(
                    f"a_{i}", [getattr(r, "id" if n == "row_id" else n) for r in changed], ARRAY(t)
                )
                for i, (n, t) in enumerate(zip(names, types, strict=True))
            ]
            given = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
            await uow.session.execute(
                update(table)
                .where(table.c.id == given.c.row_id)
                .values({c: given.c[c] for c in columns})
            )
        else:
            await uow.session.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values({c: bindparam(f"v_{c}") for c in columns}),
                [{"row_id": r.id, **{f"v_{c}": getattr(r, c) for c in columns}} for r in changed],
            )
        for row in changed:
            uow.session.expunge(row)


async def add_comment(uow: UnitOfWork, case: Case, comment: str, channel: str) -> bool:
    if case.rating_score is None:
        return False
    case.rating_comment = comment
    await uow.events.append(case, "rating.commented", f"citizen:{channel}", {"comment": comment})
    await uow.outbox.add(
        "case.updated", case.code, {"status": case.status, "rating_comment": comment}
    )
    return True


async def request_review(
    uow: UnitOfWork, case: Case, decision_due: datetime, channel: str, now: datetime | None = None
) -> str:
    """Reopen for review: "requested", "too_late" (the 30 days after the reply passed) or "not_possible"."""
    now = now or utcnow()
    try:
        advance(case, "review_requested", now)
    except ReviewWindowClosed:
        return "too_late"
    except IllegalTransition:
        return "not_possible"
    case.finish_due_at = decision_due
    case.review_requested_at = case.review_requested_at or now
    data = {"decide_by": uow.iso(decision_due), "channel": channel}
    await uow.events.append(case, "review_requested", f"citizen:{channel}", data, at=now)
    await uow.outbox.add("case.review_requested", case.code, data)
    await uow.notifications.add(
        f"staff:review:{case.code}:{now.isoformat()}", "staff", "review", case, data
    )
    return "requested"
