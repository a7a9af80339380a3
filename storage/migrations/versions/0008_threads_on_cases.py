"""staff threads opened on a case by its code (no alert behind them)

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Expand only: old processes never write a thread without an alert, and still read these.
    with op.batch_alter_table("staff_threads", schema=None) as batch_op:
        batch_op.alter_column("notification_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM staff_threads WHERE notification_id IS NULL")
    with op.batch_alter_table("staff_threads", schema=None) as batch_op:
        batch_op.alter_column("notification_id", existing_type=sa.Integer(), nullable=False)
