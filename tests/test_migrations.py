"""Migrations upgrade a database that already holds cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage import migrate
from storage.db import Database

from .conftest import PG_ADMIN_URL


def _to(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _upgrade_with_data(url: str) -> None:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(_to, "0001")
        await conn.execute(
            text(
                "INSERT INTO identities (id, channel, external_id, language, created_at) "
                "VALUES (1, 'webchat', 'abc', 'zh', CURRENT_TIMESTAMP)"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO cases (id, code, origin, kind, category, description, location_text, channel, "
                "identity_id, source, language, answers, risk_words, status, department, created_at, updated_at) "
                "VALUES (1, 'XF20261122-7K3M9Q', 'o', 'petition', 'city', 'd', 'l', 'webchat', 1, '', 'zh', "
                "'{}', '[]', 'submitted', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    await migrate.upgrade(db)
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT extended_days, extension_reason, stages FROM cases"))
        ).one()
    assert row[0] == 0 and row[1] == "" and row[2] in ("[]", [])
    assert await migrate.current_revision(db) == migrate.head_revision()
    await db.dispose()


async def test_upgrade_keeps_existing_cases_on_sqlite(tmp_path: object) -> None:
    await _upgrade_with_data(f"sqlite+aiosqlite:///{tmp_path}/old.db")


async def test_upgrade_keeps_existing_cases_on_postgres(postgres_url: str) -> None:
    name = f"minyi_mig_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        await _upgrade_with_data(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
