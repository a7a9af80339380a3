"""the measures' facts on each case: first decision, first reply and its deadline, first
review, when the matter was filed again

Revision ID: 0018
Revises: 0012
Create Date: 2026-11-30 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = (
    "decided_at",
    "first_replied_at",
    "first_reply_due_at",
    "review_requested_at",
    "refiled_at",
)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(
                sa.Column(name, storage.models.UTCDateTime(timezone=True), nullable=True)
            )
        # Later filings of a matter by its first case and time; it serves `repeat_of` alone too.
        batch_op.drop_index("ix_cases_repeat_of")
        batch_op.create_index(
            "ix_cases_repeat_of_created_at", ["repeat_of", "created_at"], unique=False
        )
    # The timeline knows when each fact first happened. The first reply's deadline is not on
    # it; the case's finish deadline is the best that is known for cases replied before this.
    for column, events in (
        ("decided_at", "'accepted', 'redirected'"),
        ("first_replied_at", "'replied'"),
        ("review_requested_at", "'review_requested'"),
    ):
        op.execute(
            f"UPDATE cases SET {column} = (SELECT min(e.at) FROM case_events e"
            f" WHERE e.case_id = cases.id AND e.type IN ({events}))"
        )
    op.execute(
        "UPDATE cases SET first_reply_due_at = finish_due_at WHERE first_replied_at IS NOT NULL"
    )
    op.execute(
        "UPDATE cases SET refiled_at = (SELECT min(later.created_at) FROM cases later"
        " WHERE later.repeat_of = coalesce(cases.repeat_of, cases.id)"
        " AND later.created_at > cases.created_at)"
    )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_repeat_of_created_at")
        batch_op.create_index("ix_cases_repeat_of", ["repeat_of"], unique=False)
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
