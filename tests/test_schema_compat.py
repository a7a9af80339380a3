"""Issue 14, part 2: a process refuses a schema newer than it understands only when it truly
cannot work with it. A newer revision is simulated by stamping the database with a revision id
this code does not know, plus the row a newer `minyi db upgrade` would have recorded."""

from __future__ import annotations

import ast
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, delete, text

from bot.app.settings import Settings, SettingsError
from bot.app.web import create_app
from bot.app.wiring import open_minyi, prepare_schema
from storage import migrate, schema_compat
from storage.db import Database
from storage.models import SchemaCompat, utcnow
from storage.schema_compat import History, declared_minimum, judge

HEAD = migrate.head_revision()
NEWER = "9999_from_a_newer_release"
Stamp = Callable[[str, str | None], Awaitable[None]]


@pytest.fixture
async def stamp(database_settings: Settings) -> AsyncIterator[Stamp]:
    """Set the database's revision (and the recorded oldest compatible code) as a newer
    release would leave them; put the real revision back afterwards (the PostgreSQL database is
    shared by the session)."""
    db = Database(database_settings.database_url)
    await migrate.upgrade(db)

    async def to(revision: str, minimum: str | None) -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
            await conn.execute(delete(SchemaCompat).where(SchemaCompat.revision == revision))
            if minimum is not None:
                await conn.execute(
                    schema_compat.schema_compat.insert().values(
                        revision=revision, min_code_revision=minimum, recorded_at=utcnow()
                    )
                )

    try:
        yield to
    finally:
        if await migrate.current_revision(db) not in schema_compat.code_history().known:
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": HEAD})
                await conn.execute(delete(SchemaCompat).where(SchemaCompat.revision != HEAD))
        await migrate.upgrade(db)  # back from a downgrade
        await db.dispose()


async def test_the_upgrade_records_the_oldest_code_that_works(database_settings: Settings) -> None:
    db = Database(database_settings.database_url)
    try:
        await migrate.upgrade(db)
        script = ScriptDirectory.from_config(migrate.alembic_config())
        assert HEAD is not None
        assert await schema_compat.recorded_minimum(db) == declared_minimum(script, HEAD)
        state = await schema_compat.inspect_schema(db)
        assert (state.verdict, state.database, state.code) == ("current", HEAD, HEAD)
    finally:
        await db.dispose()


async def test_an_older_process_starts_on_a_newer_schema_it_can_work_with(
    database_settings: Settings, stamp: Stamp, caplog: pytest.LogCaptureFixture
) -> None:
    await stamp(NEWER, HEAD)  # the newer release declared no contract step past our head
    with caplog.at_level(logging.WARNING, logger="bot.app.wiring"):
        async with open_minyi(database_settings) as minyi:
            state = await schema_compat.inspect_schema(minyi.db)
    assert (state.verdict, state.database, state.code, state.min_code) == (
        "newer",
        NEWER,
        HEAD,
        HEAD,
    )
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert NEWER in warning and HEAD in warning


async def test_an_older_process_refuses_a_newer_schema_that_needs_newer_code(
    database_settings: Settings, stamp: Stamp
) -> None:
    await stamp(NEWER, NEWER)  # a contract step: only code that knows it works
    with pytest.raises(SettingsError) as refused:
        async with open_minyi(database_settings):
            pass
    message = str(refused.value)
    assert message == (
        f"MINYI_DATABASE_URL: schema is at {NEWER}, which works only with code from revision "
        f"{NEWER} on; this code is at {HEAD}: run the newer release"
    )


async def test_a_newer_schema_that_records_nothing_is_refused(
    database_settings: Settings, stamp: Stamp
) -> None:
    await stamp(NEWER, None)
    with pytest.raises(SettingsError, match=r"newer than this code .* records no oldest code"):
        async with open_minyi(database_settings):
            pass


async def test_key_rotation_asks_for_the_exact_revision(
    database_settings: Settings, stamp: Stamp
) -> None:
    """Rotation re-encrypts the columns this code knows; a newer schema may hold more."""
    await stamp(NEWER, HEAD)
    db = Database(database_settings.database_url)
    try:
        with pytest.raises(SettingsError, match="run this command with the newer release"):
            await prepare_schema(db, exact=True)
        assert (await prepare_schema(db)).verdict == "newer"
    finally:
        await db.dispose()


async def test_an_older_schema_is_still_refused(database_settings: Settings, stamp: Stamp) -> None:
    """...except the embedded SQLite default, which migrates itself as before."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert HEAD is not None
    before = script.get_revision(HEAD)
    assert before is not None and isinstance(before.down_revision, str)
    db = Database(database_settings.database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade, before.down_revision)
    finally:
        await db.dispose()
    if database_settings.database_url.startswith("sqlite"):
        async with open_minyi(database_settings) as minyi:
            assert await migrate.current_revision(minyi.db) == HEAD
        return
    with pytest.raises(SettingsError) as refused:
        async with open_minyi(database_settings):
            pass
    assert str(refused.value) == (
        f"MINYI_DATABASE_URL: schema is at {before.down_revision}, code needs {HEAD}; "
        "run `minyi db upgrade` first"
    )


def downgrade(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_readyz_reports_the_revisions_and_fails_once_the_schema_outgrows_the_code(
    aiohttp_client: Any, database_settings: Settings, stamp: Stamp
) -> None:
    client = await aiohttp_client(create_app(database_settings, workers=False))
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["checks"]["schema"] == "ok"
    assert body["schema"]["database"] == HEAD and body["schema"]["state"] == "current"

    await stamp(NEWER, HEAD)  # `minyi db upgrade` of a compatible release, under it
    body = await (await client.get("/readyz")).json()
    assert body["ready"] is True
    assert body["schema"] == {
        "database": NEWER,
        "code": HEAD,
        "min_code_revision": HEAD,
        "state": "newer",
    }

    await stamp(NEWER, NEWER)  # a contract step applied under a process it breaks
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["schema"].startswith("failed: schema is at 9999")


# -- the rule itself, on migration files written for the test ----------------------------------


def migrations(tmp_path: Path, *steps: tuple[str, str | None, str | None]) -> ScriptDirectory:
    """A migration directory of (revision, down_revision, min_code_revision) steps."""
    versions = tmp_path / "versions"
    versions.mkdir(parents=True)
    for revision, down, minimum in steps:
        declared = f"min_code_revision = {minimum!r}\n" if minimum else ""
        (versions / f"{revision}.py").write_text(
            f"revision = {revision!r}\ndown_revision = {down!r}\n{declared}"
            "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
        )
    return ScriptDirectory(str(tmp_path))


def test_the_newest_declaration_on_the_way_decides(tmp_path: Path) -> None:
    script = migrations(
        tmp_path,
        ("a", None, None),
        ("b", "a", None),
        ("c", "b", "c"),  # a one-step contract: only code that knows c
        ("d", "c", None),
        ("e", "d", "d"),  # expand/contract: d's release stopped using what e drops
        ("f", "e", "b"),  # an older floor declared later does not lower it
    )
    assert [declared_minimum(script, r) for r in "abcdef"] == ["a", "a", "c", "c", "d", "d"]


def test_a_declaration_that_names_a_later_revision_is_a_mistake(tmp_path: Path) -> None:
    script = migrations(tmp_path, ("a", None, None), ("b", "a", "c"), ("c", "b", None))
    with pytest.raises(ValueError, match="migration b: min_code_revision 'c'"):
        declared_minimum(script, "c")


def test_the_verdicts() -> None:
    history = History("c", frozenset("abc"), frozenset("abc"))
    assert judge("c", None, history).verdict == "current"
    assert judge("b", None, history).verdict == "older"
    assert judge(None, None, history).verdict == "empty"
    assert judge("d", "a", history).verdict == "newer"
    assert judge("d", "c", history).verdict == "newer"
    assert judge("d", "d", history).verdict == "too_new"
    assert judge("d", None, history).verdict == "unrecorded"
    assert not judge("d", "d", history).works and judge("d", "a", history).problem == ""


# -- what migration authors must declare -----------------------------------------------------------

CONTRACT_CALLS = {"drop_column", "drop_table", "rename_table"}


def contract_steps(source: str) -> list[str]:
    """What in a migration's upgrade() breaks older code: drops, renames, NOT NULL without a
    server default on an existing table."""
    tree = ast.parse(source)
    (upgrade,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
    found = []
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        keywords = {k.arg: k.value for k in node.keywords}
        if name in CONTRACT_CALLS or (name == "alter_column" and "new_column_name" in keywords):
            found.append(f"{name} (line {node.lineno})")
        elif name == "add_column":
            for column in (a for a in node.args if isinstance(a, ast.Call)):
                kw = {k.arg: k.value for k in column.keywords}
                required = isinstance(kw.get("nullable"), ast.Constant) and (
                    kw["nullable"].value is False  # type: ignore[attr-defined]
                )
                if required and "server_default" not in kw:
                    found.append(f"add_column NOT NULL without server_default (line {node.lineno})")
        elif name == "alter_column" and getattr(keywords.get("nullable"), "value", None) is False:
            found.append(f"alter_column to NOT NULL (line {node.lineno})")
    return found


def test_every_contract_step_declares_the_oldest_code_that_survives_it() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    undeclared = []
    for step in script.walk_revisions():
        path = Path(step.path)
        found = contract_steps(path.read_text("utf-8"))
        if found and getattr(step.module, "min_code_revision", None) is None:
            undeclared.append(f"{path.name}: {', '.join(found)}")
    assert undeclared == [], (
        "these migrations break older code and must declare min_code_revision "
        "(storage/migrations/versions/README.md)"
    )
    assert HEAD is not None
    declared_minimum(script, HEAD)  # every declaration names a revision at or before its own


def test_the_lint_sees_a_contract_step() -> None:
    source = (
        "def upgrade():\n"
        "    with op.batch_alter_table('cases') as b:\n"
        "        b.drop_column('old')\n"
        "        b.add_column(sa.Column('x', sa.Integer(), nullable=False))\n"
        "        b.add_column(sa.Column('y', sa.Integer(), nullable=False, server_default='0'))\n"
        "        b.alter_column('a', new_column_name='b')\n"
    )
    assert contract_steps(source) == [
        "drop_column (line 3)",
        "add_column NOT NULL without server_default (line 4)",
        "alter_column (line 6)",
    ]
