"""case work: lead and co-handling departments, owner, 督办 level, mailbox, suggestion outcome

Revision ID: 0015
Revises: 0009
Create Date: 2026-11-30 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0015"
down_revision = "0009"
branch_labels = None
depends_on = None

TEXT_COLUMNS = (
    ("owner", 64),
    ("routed_by", 100),
    ("routed_from", 100),
    ("mailbox", 40),
    ("outcome", 20),
)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name, length in TEXT_COLUMNS:
            batch_op.add_column(
                sa.Column(name, sa.String(length=length), server_default="", nullable=False)
            )
        batch_op.add_column(sa.Column("level", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("repeat_of", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("repeat_level", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("repeat_checked_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            op.f("fk_cases_repeat_of_cases"), "cases", ["repeat_of"], ["id"]
        )
        batch_op.create_index("ix_cases_repeat_of", ["repeat_of"], unique=False)
        batch_op.create_index("ix_cases_mailbox_id", ["mailbox", "id"], unique=False)
    # Cases filed before repeats were looked for are not compared after the fact.
    op.execute("UPDATE cases SET repeat_checked_at = created_at")
    op.create_index(
        "ix_cases_repeat_unchecked",
        "cases",
        ["id"],
        unique=False,
        postgresql_where=sa.text("repeat_checked_at IS NULL"),
        sqlite_where=sa.text("repeat_checked_at IS NULL"),
    )
    op.create_table(
        "case_co_departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_co_departments_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_co_departments")),
        sa.UniqueConstraint(
            "case_id", "department", name=op.f("uq_case_co_departments_case_id_department")
        ),
    )
    op.create_index(
        "ix_case_co_departments_department_case_id",
        "case_co_departments",
        ["department", "case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_cases_repeat_unchecked", table_name="cases")
    op.drop_index("ix_case_co_departments_department_case_id", table_name="case_co_departments")
    op.drop_table("case_co_departments")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_mailbox_id")
        batch_op.drop_index("ix_cases_repeat_of")
        batch_op.drop_constraint(op.f("fk_cases_repeat_of_cases"), type_="foreignkey")
        batch_op.drop_column("repeat_checked_at")
        batch_op.drop_column("repeat_level")
        batch_op.drop_column("repeat_of")
        batch_op.drop_column("level")
        for name, _ in reversed(TEXT_COLUMNS):
            batch_op.drop_column(name)
