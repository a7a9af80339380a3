"""sms route: the mobile behind an SMS conversation, encrypted, so staff can answer by SMS

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 15:30:00.000000

Expand only: one nullable column that older code never reads or writes (no min_code_revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_enc", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("phone_enc")
