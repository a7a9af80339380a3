"""uploads: photos kept and not yet a case's, for the orphan sweep; attachments by file key

Revision ID: 0021
Revises: 0018
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None
# Expand only: a new table and an index that older code never reads (so no min_code_revision).


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_key", sa.String(length=200), nullable=False),
        sa.Column("conversation", sa.String(length=300), nullable=False),
        sa.Column("seen_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("file_key", name=op.f("uq_uploads_file_key")),
    )
    op.create_index(op.f("ix_uploads_seen_at"), "uploads", ["seen_at"], unique=False)
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index("ix_attachments_file_key", ["file_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_attachments_file_key")
    op.drop_index(op.f("ix_uploads_seen_at"), table_name="uploads")
    op.drop_table("uploads")
