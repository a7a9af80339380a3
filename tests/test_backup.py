"""`minyi backup` and `minyi restore`: a backup taken while citizens file, restored into a fresh
database, where every contact decrypts, every chain verifies and the outbox carries on without
sending again what it had sent."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import secrets
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import backup_cli
from bot.app.audit import verify
from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from storage.backup import MANIFEST
from storage.crypto import PiiCipher, parse_key
from storage.models import Case, OutboxEntry
from storage.relay import Relay

from .conftest import PG_ADMIN_URL, PII_KEY, Citizen, run_apart, settings_for, until_done

ROOT = Path(__file__).resolve().parent.parent


async def minyi(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    environment.update(env, PYTHONPATH=str(ROOT))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def command(name: str, settings: Settings, *args: str, **options: object) -> int:
    """`minyi backup|restore` in this process (its own event loop, on a thread): the same code
    as the command, without a second interpreter's start-up for each check."""
    namespace = argparse.Namespace(command=name, **options)
    parsed = {"file": Path(args[0])} if name == "restore" else {"output": Path(args[0])}
    for key, value in parsed.items():
        setattr(namespace, key, value)
    return await asyncio.to_thread(backup_cli.run, settings, namespace)


def env_of(settings: Settings) -> dict[str, str]:
    env = {"MINYI_DATABASE_URL": settings.database_url, "MINYI_PII_KEY": PII_KEY}
    if settings.redis_url:
        env.update(
            MINYI_REDIS_URL=settings.redis_url,
            MINYI_REDIS_PREFIX=settings.redis_prefix,
            MINYI_STREAM=settings.stream,
        )
    return env


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A new database with nothing in it, as an operator makes with createdb."""
    name = f"minyi_restore_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    run_apart(admin(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    run_apart(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=("sqlite", "postgres+redis"))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request, request.param, tmp_path / "source")


@pytest.fixture
def target(request: pytest.FixtureRequest, source: Settings, tmp_path: Path) -> Settings:
    if source.is_embedded_database:
        (tmp_path / "restored").mkdir()
        return source.replace(database_url=f"sqlite+aiosqlite:///{tmp_path}/restored/minyi.db")
    return source.replace(database_url=request.getfixturevalue("empty_postgres"))


async def file(runtime: object, sender: str) -> str:
    reply = await Citizen(runtime, sender=sender).file_a_matter()  # type: ignore[arg-type]
    return reply.split("编号是 ")[1].split("，")[0]


async def test_a_backup_taken_while_citizens_file_restores_whole(
    source: Settings, target: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "source").mkdir(exist_ok=True)
    backup_file = tmp_path / "office.backup"
    async with open_minyi(source) as runtime:
        relay = Relay(runtime.db, runtime.cipher, runtime.redis, source.stream)
        for i in range(3):
            await file(runtime, f"early-{i}")
        await until_done(relay.publish_once)  # these three are in the stream before the backup
        await file(runtime, "unpublished-0")

        # The backup runs in its own process while citizens go on filing.
        backup = asyncio.create_task(
            minyi("backup", "-o", str(backup_file), cwd=tmp_path, env=env_of(source))
        )
        during = 0
        while not backup.done() and during < 20:
            await file(runtime, f"during-{during}")
            during += 1
        code, out, err = await backup
        assert code == 0, err
        assert during > 0  # the copy was taken while filings went on
        published_before = {
            row.id: row.position
            for row in (await _outbox(runtime.db.engine))
            if row.published_at is not None
        }

    assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
    assert f"backup written to {backup_file}" in out and "The personal-data key is not in it" in out
    with tarfile.open(backup_file) as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        for member in archive.getmembers():
            body = archive.extractfile(member).read()  # type: ignore[union-attr]
            assert PII_KEY.encode() not in body and parse_key(PII_KEY) not in body
    assert names[0] == MANIFEST and len(names) == 2
    counts = manifest["counts"]
    assert 4 <= counts["cases"] <= 4 + during, (counts, during)
    assert (
        counts["outbox"] == counts["cases"] and counts["outbox_unpublished"] == counts["cases"] - 3
    )
    assert manifest["key_check"] == PiiCipher(parse_key(PII_KEY)).key_check()

    # The wrong key is refused before anything is written.
    other_key = base64.urlsafe_b64encode(b"o" * 32).decode()
    wrong = target.replace(pii_key=other_key)
    assert await command("restore", wrong, str(backup_file), replace=False) == 1
    assert not await _has_tables(target)

    assert await command("restore", target, str(backup_file), replace=False) == 0
    assert await command("restore", target, str(backup_file), replace=False) == 1
    # --replace brings the backup over what is there (here: the same backup, restored again).
    assert await command("restore", target, str(backup_file), replace=True) == 0
    said = capsys.readouterr()
    assert "is not the one this backup was made with" in said.err
    assert f"{counts['cases']:,} cases" in said.out
    assert "already holds a Minyi database" in said.err

    async with open_minyi(target) as restored:
        report = io.StringIO()
        assert await verify(restored.units, [], out=report) == 0, report.getvalue()  # audit verify
        assert f"{counts['cases']:,} of {counts['cases']:,} cases verified; 0 broken" in (
            report.getvalue()
        )
        async with restored.units() as uow:
            cases = list(await uow.session.scalars(select(Case)))
            assert len(cases) == counts["cases"]
            for case in cases:
                assert uow.cases.contact(case) == ("张三", "+8613800138000"), case.code
        rows = await _outbox(restored.db.engine)
        restored_published = {r.id: r.position for r in rows if r.published_at is not None}
        # What was published at the backup is published in the copy, at the same positions.
        assert set(restored_published) <= set(published_before)
        assert len(restored_published) == counts["outbox"] - counts["outbox_unpublished"]
        for entry, position in restored_published.items():
            assert published_before[entry] == position

        relay = Relay(restored.db, restored.cipher, restored.redis, target.stream)
        stream_before = await _stream_ids(restored.redis, target.stream)
        await until_done(relay.publish_once)
        rows = await _outbox(restored.db.engine)
        assert all(r.published_at is not None for r in rows)
        positions = sorted(r.position for r in rows)
        assert positions == list(range(1, len(rows) + 1))  # the feed goes on without a gap
        if restored.redis is not None:
            added = (await _stream_ids(restored.redis, target.stream))[len(stream_before) :]
            # Only what the backup held unpublished went out again; nothing published twice.
            assert len(added) == counts["outbox_unpublished"]
            assert not set(added) & set(restored_published)


async def test_a_restore_without_the_key_file_says_where_it_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded default's key lives beside the database; a restore never makes a new one."""
    (tmp_path / "made").mkdir()
    (tmp_path / "fresh").mkdir()
    made = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/made/minyi.db")
    fresh = made.replace(database_url=f"sqlite+aiosqlite:///{tmp_path}/fresh/minyi.db")
    async with open_minyi(made) as runtime:
        await file(runtime, "someone")
    backup_file = str(tmp_path / "b.backup")
    assert await command("backup", made, backup_file) == 0
    assert await command("restore", fresh, backup_file, replace=False) == 1
    assert "put the key file back at" in capsys.readouterr().err
    assert not (tmp_path / "fresh" / "minyi.db.key").exists()
    key = (tmp_path / "made" / "minyi.db.key").read_bytes()
    (tmp_path / "fresh" / "minyi.db.key").write_bytes(key)
    assert await command("restore", fresh, backup_file, replace=False) == 0
    assert "1 cases" in capsys.readouterr().out
    # --replace overwrites; the backup of an emptier office takes its place.
    async with open_minyi(fresh) as runtime:
        await file(runtime, "another")
    assert await command("restore", fresh, backup_file, replace=True) == 0
    async with open_minyi(fresh) as runtime, runtime.units() as uow:
        assert len(list(await uow.session.scalars(select(Case)))) == 1


async def _outbox(engine: object) -> list[OutboxEntry]:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    assert isinstance(engine, AsyncEngine)
    async with AsyncSession(engine) as session:
        return list(await session.scalars(select(OutboxEntry).order_by(OutboxEntry.seq)))


async def _stream_ids(redis: Redis | None, stream: str) -> list[str]:
    if redis is None:
        return []
    return [fields[b"id"].decode() for _, fields in await redis.xrange(stream)]


async def _has_tables(settings: Settings) -> bool:
    from storage.backup import _has_tables as has_tables
    from storage.db import Database

    db = Database(settings.database_url)
    try:
        return await has_tables(db)
    finally:
        await db.dispose()
