"""SMS replies waiting: a provider's push is acknowledged once its replies are stored

Revision ID: 0016
Revises: 0009
Create Date: 2026-11-30 11:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_replies_waiting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reply_enc", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sms_replies_waiting_due", "sms_replies_waiting", ["next_try_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_sms_replies_waiting_due", table_name="sms_replies_waiting")
    op.drop_table("sms_replies_waiting")
