"""stats rollup: the measures' counts per local day and grouping, and triggers that note the
days whose cases change

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 14:00:00.000000

Expand only: new tables, and triggers that write to them whenever a case's facts change, so
older code that knows nothing of the rollup still keeps it right (no min_code_revision). The
rollup is filled lazily, on the first questions about old enough days (storage/rollup.py): the
office's zone, repeat window and department tree it is counted for are settings, not known here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

COUNTS = (
    "cases", "petitions", "closed", "rated", "satisfied", "acceptance_due", "accepted_on_time",
    "reply_due", "replied_on_time", "resolved_first_time", "repeat_checked", "repeats",
    "suggestions_received", "suggestions_adopted", "suggestions_partly_adopted",
    "suggestions_not_adopted",
)  # fmt: skip
# The columns storage/counting.py reads: a change to any of them may move a count.
FACTS = (
    "kind", "category", "channel", "department", "outcome", "created_at", "closed_at",
    "rating_score", "rating_scale", "accept_due_at", "decided_at", "first_replied_at",
    "first_reply_due_at", "finish_due_at", "review_requested_at", "refiled_at",
    "repeat_checked_at", "repeat_of",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("day", "dimension", "key", name=op.f("pk_stats_rollup")),
    )
    op.create_table(
        "stats_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("computed_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_after", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_until", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_rollup_days")),
    )
    op.create_table(
        "stats_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_rollup_state")),
    )
    op.create_table(
        "stats_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filed_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_dirty")),
    )
    # "Is any note older than the days asked for?" without reading the notes already taken.
    op.create_index("ix_stats_dirty_filed_at", "stats_dirty", ["filed_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _changed(old: str, new: str, distinct: str) -> str:
    return " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in FACTS)


def _postgres_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION stats_note_case() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO stats_dirty (filed_at) VALUES (OLD.created_at);
            END IF;
            IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
                    AND NEW.created_at IS DISTINCT FROM OLD.created_at) THEN
                INSERT INTO stats_dirty (filed_at) VALUES (NEW.created_at);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER stats_note_case_written AFTER INSERT OR DELETE ON cases"
        " FOR EACH ROW EXECUTE FUNCTION stats_note_case()"
    )
    op.execute(
        "CREATE TRIGGER stats_note_case_changed AFTER UPDATE ON cases FOR EACH ROW"
        f" WHEN ({_changed('OLD', 'NEW', 'IS DISTINCT FROM')})"
        " EXECUTE FUNCTION stats_note_case()"
    )
    op.execute(
        """
        CREATE FUNCTION stats_note_co_department() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO stats_dirty (filed_at)
                    SELECT created_at FROM cases WHERE id = OLD.case_id;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO stats_dirty (filed_at)
                    SELECT created_at FROM cases WHERE id = NEW.case_id;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER stats_note_co_department AFTER INSERT OR UPDATE OR DELETE"
        " ON case_co_departments FOR EACH ROW EXECUTE FUNCTION stats_note_co_department()"
    )
    # TRUNCATE fires no row trigger: everything rolled up goes with the cases.
    op.execute(
        """
        CREATE FUNCTION stats_forget() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM stats_rollup;
            DELETE FROM stats_rollup_days;
            RETURN NULL;
        END $$
        """
    )
    for table in ("cases", "case_co_departments"):
        op.execute(
            f"CREATE TRIGGER stats_forget_{table} AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION stats_forget()"
        )


def _sqlite_triggers() -> None:
    note = "INSERT INTO stats_dirty (filed_at) VALUES"
    op.execute(
        "CREATE TRIGGER stats_note_case_inserted AFTER INSERT ON cases FOR EACH ROW"
        f" BEGIN {note} (NEW.created_at); END"
    )
    op.execute(
        "CREATE TRIGGER stats_note_case_deleted AFTER DELETE ON cases FOR EACH ROW"
        f" BEGIN {note} (OLD.created_at); END"
    )
    op.execute(
        "CREATE TRIGGER stats_note_case_changed AFTER UPDATE ON cases FOR EACH ROW"
        f" WHEN {_changed('OLD', 'NEW', 'IS NOT')}"
        f" BEGIN {note} (OLD.created_at); {note} (NEW.created_at); END"
    )
    co = "INSERT INTO stats_dirty (filed_at) SELECT created_at FROM cases WHERE id ="
    op.execute(
        "CREATE TRIGGER stats_note_co_inserted AFTER INSERT ON case_co_departments FOR EACH ROW"
        f" BEGIN {co} NEW.case_id; END"
    )
    op.execute(
        "CREATE TRIGGER stats_note_co_deleted AFTER DELETE ON case_co_departments FOR EACH ROW"
        f" BEGIN {co} OLD.case_id; END"
    )
    op.execute(
        "CREATE TRIGGER stats_note_co_changed AFTER UPDATE ON case_co_departments FOR EACH ROW"
        f" BEGIN {co} OLD.case_id; {co} NEW.case_id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("cases", "case_co_departments"):
            op.execute(f"DROP TRIGGER IF EXISTS stats_forget_{table} ON {table}")
        op.execute("DROP TRIGGER IF EXISTS stats_note_co_department ON case_co_departments")
        op.execute("DROP TRIGGER IF EXISTS stats_note_case_changed ON cases")
        op.execute("DROP TRIGGER IF EXISTS stats_note_case_written ON cases")
        for function in ("stats_forget", "stats_note_co_department", "stats_note_case"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for trigger in ("stats_note_case_inserted", "stats_note_case_deleted",
                        "stats_note_case_changed", "stats_note_co_inserted",
                        "stats_note_co_deleted", "stats_note_co_changed"):  # fmt: skip
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for table in ("stats_dirty", "stats_rollup_state", "stats_rollup_days", "stats_rollup"):
        op.drop_table(table)
