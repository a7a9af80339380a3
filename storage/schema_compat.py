"""Which database schemas this code can work with, decided without the newer migration files.

Migrations expand by default: they add tables, and columns that are nullable or have a server
default, which older code neither reads nor has to write, so older code keeps working on the
newer schema. A migration that breaks older code (it drops or renames what an older release
reads or writes, or adds a NOT NULL column without a default) is a contract step and says so
with a module attribute `min_code_revision`: the oldest code revision that still works once it
has run (storage/migrations/versions/README.md). Every run of the migrations records, beside
Alembic's own version, the oldest code that works with the schema it leaves: the newest
declaration on the way, else the first revision.

A process cannot know the migrations newer than its own, but it knows its own history, and the
recorded revision is either in it (the process is new enough) or not: that is the whole rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal, cast

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, inspect, select, update

from .db import Database
from .migrate import alembic_config
from .models import SchemaCompat, utcnow

# The row each run of the migrations writes for the revision it leaves the database at.
schema_compat = cast(Table, SchemaCompat.__table__)

Verdict = Literal["current", "newer", "empty", "older", "too_new", "unrecorded"]


@dataclass(frozen=True)
class History:
    """The migrations this code carries: its head and every revision up to it."""

    head: str
    lineage: frozenset[str]  # the head and its ancestors
    known: frozenset[str]  # every revision in the code's migration files


@cache
def code_history() -> History:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "storage/migrations holds no migration"
    lineage = frozenset(s.revision for s in script.walk_revisions("base", head))
    known = frozenset(s.revision for s in script.walk_revisions())
    return History(head, lineage, known)


def declared_minimum(script: ScriptDirectory, revision: str) -> str:
    """The oldest code revision that works with the schema at `revision`: the newest of the
    `min_code_revision` declarations of the migrations up to it, else the first revision."""
    chain = [s for s in script.walk_revisions("base", revision)]  # newest first
    order = [s.revision for s in chain]
    newest = len(order) - 1  # no declaration: the first revision
    for index, step in enumerate(chain):
        declared = getattr(step.module, "min_code_revision", None)
        if declared is None:
            continue
        if declared not in order[index:]:
            raise ValueError(
                f"migration {step.revision}: min_code_revision {declared!r} is neither "
                "this migration nor one before it"
            )
        newest = min(newest, order.index(declared))
    return order[newest]


def record(connection: Connection, script: ScriptDirectory) -> str | None:
    """After migrations ran on `connection`: store the oldest code that works with the schema
    now there (no-op below the revision that created the table)."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None or not inspect(connection).has_table(schema_compat.name):
        return None  # below the migration that made the table
    minimum = declared_minimum(script, revision)
    values = {"min_code_revision": minimum, "recorded_at": utcnow()}
    changed = connection.execute(
        update(schema_compat).where(schema_compat.c.revision == revision).values(**values)
    )
    if not changed.rowcount:
        connection.execute(schema_compat.insert().values(revision=revision, **values))
    return minimum


@dataclass(frozen=True)
class SchemaState:
    """The database's schema revision, this code's, and whether the two can work together."""

    database: str | None
    code: str
    min_code: str | None  # recorded for a database newer than the code
    verdict: Verdict

    @property
    def works(self) -> bool:
        return self.verdict in ("current", "newer")

    @property
    def problem(self) -> str:
        """One line for a process that refuses this schema (empty when it works)."""
        db, code = self.database, self.code
        return {
            "current": "",
            "newer": "",
            "empty": f"schema is at nothing, code needs {code}; run `minyi db upgrade` first",
            "older": f"schema is at {db}, code needs {code}; run `minyi db upgrade` first",
            "too_new": (
                f"schema is at {db}, which works only with code from revision {self.min_code} "
                f"on; this code is at {code}: run the newer release"
            ),
            "unrecorded": (
                f"schema is at {db}, newer than this code ({code}), and records no oldest "
                "code that works with it; run the newer release"
            ),
        }[self.verdict]

    def to_json(self) -> dict[str, str | None]:
        return {
            "database": self.database,
            "code": self.code,
            "min_code_revision": self.min_code,
            "state": self.verdict,
        }


def judge(database: str | None, recorded_min: str | None, history: History) -> SchemaState:
    head = history.head
    verdict: Verdict
    if database is None:
        verdict = "empty"
    elif database == head:
        verdict = "current"
    elif database in history.known:
        verdict = "older"
    elif recorded_min is None:
        verdict = "unrecorded"
    elif recorded_min in history.lineage:
        verdict = "newer"
    else:
        verdict = "too_new"
    return SchemaState(database, head, recorded_min, verdict)


def _recorded(connection: Connection, revision: str) -> str | None:
    if not inspect(connection).has_table(schema_compat.name):
        return None  # the database is below the migration that made the table
    return connection.scalar(
        select(schema_compat.c.min_code_revision).where(schema_compat.c.revision == revision)
    )


async def inspect_schema(db: Database) -> SchemaState:
    """Read the database's revision (and, when it is newer than the code, what it records)."""
    history = code_history()

    def _read(connection: Connection) -> SchemaState:
        revision = MigrationContext.configure(connection).get_current_revision()
        recorded = None
        if revision is not None and revision not in history.known:
            recorded = _recorded(connection, revision)
        return judge(revision, recorded, history)

    async with db.engine.connect() as connection:
        return await connection.run_sync(_read)


async def recorded_minimum(db: Database) -> str | None:
    """What the database records for its current revision."""

    def _read(connection: Connection) -> str | None:
        revision = MigrationContext.configure(connection).get_current_revision()
        return None if revision is None else _recorded(connection, revision)

    async with db.engine.connect() as connection:
        return await connection.run_sync(_read)
