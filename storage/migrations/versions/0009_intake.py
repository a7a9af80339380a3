"""intake by other systems: proven identity links, Open311's listing by service

Revision ID: 0009
Revises: 0011
Create Date: 2026-11-23 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("citizen_proven_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_category_created_at", ["category", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_category_created_at")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("citizen_proven_at")
