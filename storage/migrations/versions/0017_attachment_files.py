"""attachments: the photo's key in Minyi's file store and the fetch attempts

Revision ID: 0017
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_key", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("fetch_tries", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_attachments_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_attachments_created_at")
        batch_op.drop_column("fetch_tries")
        batch_op.drop_column("file_key")
