"""the messages of live conversations, for the desk

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_thread_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=10), nullable=False),
        sa.Column("staff_name", sa.String(length=100), nullable=False),
        sa.Column("text_enc", sa.LargeBinary(), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["staff_threads.id"],
            name=op.f("fk_staff_thread_messages_thread_id_staff_threads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_thread_messages")),
    )
    with op.batch_alter_table("staff_thread_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_thread_messages_thread_id"), ["thread_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_thread_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_thread_messages_thread_id"))
    op.drop_table("staff_thread_messages")
