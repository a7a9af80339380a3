"""following a case from anywhere: anonymous cases and their 查询码, proof of identity

Revision ID: 0014
Revises: 0009
Create Date: 2026-11-30 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0014"
down_revision = "0015"
branch_labels = None
depends_on = None

UTC = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("anonymous", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("query_code_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "case_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("how", sa.String(length=10), nullable=False),
        sa.Column("granted_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], name="fk_case_access_identity_id_identities"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_access_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_case_access"),
        sa.UniqueConstraint("identity_id", "case_id", name="uq_case_access_identity_id_case_id"),
    )
    op.create_index("ix_case_access_case_id", "case_access", ["case_id"], unique=False)
    op.create_table(
        "proof_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tries_left", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("used_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_proof_codes_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_proof_codes"),
    )
    op.create_index("ix_proof_codes_asker", "proof_codes", ["channel", "external_id", "created_at"])
    op.create_index("ix_proof_codes_case", "proof_codes", ["case_id", "created_at"])
    op.create_index("ix_proof_codes_phone", "proof_codes", ["phone_hash", "created_at"])
    op.create_table(
        "proof_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_proof_failures_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_proof_failures"),
    )
    op.create_index("ix_proof_failures_asker", "proof_failures", ["channel", "external_id", "at"])
    op.create_index("ix_proof_failures_case", "proof_failures", ["case_id", "at"])


def downgrade() -> None:
    op.drop_table("proof_failures")
    op.drop_table("proof_codes")
    op.drop_index("ix_case_access_case_id", table_name="case_access")
    op.drop_table("case_access")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("query_code_hash")
        batch_op.drop_column("anonymous")
