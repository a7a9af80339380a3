"""Backups that restore: one file holding a consistent copy of the database and a manifest.

PostgreSQL is copied by `pg_dump` inside a snapshot exported from our own read-only
transaction, so the row counts in the manifest are those of the dump itself; SQLite by its
online backup API, which copies a consistent image while the service keeps writing. The
manifest carries the schema revision, those counts and a *key check*: a value derived from the
personal-data key that tells whether a key is the right one and nothing else. The key itself is
never written: a stolen backup without it holds no readable name or phone.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from .crypto import PiiCipher
from .db import Database

FORMAT = "minyi-backup/1"
MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_COPY = "database.sqlite"

# What a restore must bring back, counted in the copy itself.
COUNTS = {
    "cases": "SELECT count(*) FROM cases",
    "case_events": "SELECT count(*) FROM case_events",
    "citizens": "SELECT count(*) FROM citizens",
    "outbox": "SELECT count(*) FROM outbox",
    "outbox_unpublished": "SELECT count(*) FROM outbox WHERE published_at IS NULL",
}
# A ciphertext to try the key on: the first contact of a case, if any case has one.
_SAMPLE = "SELECT contact_phone_enc FROM cases WHERE contact_phone_enc IS NOT NULL LIMIT 1"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    format: str
    created_at: str
    database: str  # "postgresql" or "sqlite"
    revision: str | None
    key_check: str
    counts: dict[str, int]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT:
            raise BackupError(f"not a Minyi backup of a format this version reads ({FORMAT})")
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


async def backup(db: Database, cipher: PiiCipher, target: Path) -> Manifest:
    """Write a backup of `db` to `target` (mode 0600; complete or not there at all)."""
    with tempfile.TemporaryDirectory(prefix="minyi-backup-") as work:
        folder = Path(work)
        if db.is_postgres:
            manifest = await _dump_postgres(db, cipher, folder / PG_DUMP)
            member = PG_DUMP
        else:
            manifest = await asyncio.to_thread(_copy_sqlite, _sqlite_path(db), folder, cipher)
            member = SQLITE_COPY
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # SQLite's pages compress well; a pg_dump custom file is compressed already.
        mode = "w:gz" if member == SQLITE_COPY else "w"
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode=mode) as archive:  # type: ignore[call-overload]
            (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2), "utf-8")
            archive.add(folder / MANIFEST, MANIFEST)
            archive.add(folder / member, member)
        partial.replace(target)
    return manifest


def read_manifest(source: Path) -> Manifest:
    try:
        with tarfile.open(source, "r:*") as archive:
            handle = archive.extractfile(MANIFEST)
            if handle is None:
                raise KeyError(MANIFEST)
            return Manifest.from_json(json.loads(handle.read()))
    except (tarfile.TarError, KeyError, json.JSONDecodeError, TypeError) as exc:
        raise BackupError(f"{source}: not a Minyi backup ({type(exc).__name__})") from None


async def restore(db: Database, cipher: PiiCipher, source: Path, *, replace: bool) -> Manifest:
    """Bring the backup at `source` into `db`, which must be empty unless `replace`.

    Refused before anything is touched when the key is not the one the backup was made with:
    a database whose contacts nobody can read is no restore. Afterwards the restored rows are
    counted and compared with the manifest."""
    manifest = read_manifest(source)
    if manifest.key_check != cipher.key_check():
        raise BackupError(
            f"the personal-data key in use (check {cipher.key_check()}) is not the one this "
            f"backup was made with (check {manifest.key_check}); set MINYI_PII_KEY (or put "
            "back the key file) to that key, kept apart from the backups"
        )
    expected = "postgresql" if db.is_postgres else "sqlite"
    if manifest.database != expected:
        raise BackupError(
            f"this is a {manifest.database} backup and MINYI_DATABASE_URL is {expected}; "
            "restore into the same kind of database"
        )
    if not replace and await _has_tables(db):
        raise BackupError(
            "MINYI_DATABASE_URL already holds a Minyi database; restore into a new, empty one "
            "(createdb, or a new file name), or pass --replace to overwrite it"
        )
    with _extracted(source, PG_DUMP if db.is_postgres else SQLITE_COPY) as copy:
        if db.is_postgres:
            await db.dispose()  # pg_restore --clean must not wait behind our own pool
            await _run(
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                *(("--clean", "--if-exists") if replace else ()),
                f"--dbname={db.url.database}",
                str(copy),
                env=_libpq_env(db.url),
            )
        else:
            await db.dispose()
            await asyncio.to_thread(_sqlite_copy_into, copy, _sqlite_path(db))
    async with db.engine.connect() as conn:
        found = await _counts(conn)
        await _check_key(conn, cipher)
    if found != manifest.counts:
        raise BackupError(f"restored rows {found} differ from the backup's {manifest.counts}")
    return manifest


# -- PostgreSQL ------------------------------------------------------------------------------------


async def _dump_postgres(db: Database, cipher: PiiCipher, out: Path) -> Manifest:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = await conn.scalar(text("SELECT pg_export_snapshot()"))
            await _check_key(conn, cipher)
            counts = await _counts(conn)
            revision = await _revision(conn)
            # The dump sees exactly what this transaction sees, as long as it stays open.
            await _run(
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={out}",
                str(db.url.database),
                env=_libpq_env(db.url),
            )
    return _manifest("postgresql", revision, cipher, counts)


def _libpq_env(url: URL) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore in their environment, so the password never
    shows in a process list."""
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
    ):
        if value is not None:
            env[name] = str(value)
    ssl = url.query.get("ssl") or url.query.get("sslmode")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = {"true": "require"}.get(ssl, ssl)
    return env


async def _run(program: str, *args: str, env: dict[str, str]) -> None:
    if shutil.which(program) is None:
        raise BackupError(
            f"{program} is not installed; install the PostgreSQL client of the server's "
            "version or newer (Debian: apt-get install postgresql-client)"
        )
    process = await asyncio.create_subprocess_exec(
        program, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        said = errors.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(f"{program} failed: {said[-1] if said else process.returncode}")


# -- SQLite ----------------------------------------------------------------------------------------


def _sqlite_path(db: Database) -> Path:
    if not db.url.database or db.url.database == ":memory:":
        raise BackupError("MINYI_DATABASE_URL: an in-memory SQLite database has nothing to keep")
    return Path(db.url.database)


def _copy_sqlite(source: Path, folder: Path, cipher: PiiCipher) -> Manifest:
    if not source.is_file():
        raise BackupError(f"MINYI_DATABASE_URL: there is no database file at {source}")
    copy = folder / SQLITE_COPY
    with _sqlite(source) as live, _sqlite(copy) as out:
        live.backup(out)  # a consistent image, while other connections keep writing
    with _sqlite(copy) as out:
        counts = {name: int(out.execute(query).fetchone()[0]) for name, query in COUNTS.items()}
        revision = out.execute("SELECT version_num FROM alembic_version").fetchone()
        sample = out.execute(_SAMPLE).fetchone()
    _try_key(cipher, sample[0] if sample else None)
    return _manifest("sqlite", revision[0] if revision else None, cipher, counts)


def _sqlite_copy_into(copy: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sqlite(copy) as source, _sqlite(target) as out:
        source.backup(out)  # replaces every page of the target, WAL and all


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


# -- both ------------------------------------------------------------------------------------------


@contextmanager
def _extracted(source: Path, member: str) -> Iterator[Path]:
    """The named member of the archive in a private temporary file (no path from the archive is
    ever used, so a crafted archive cannot write elsewhere)."""
    with tempfile.TemporaryDirectory(prefix="minyi-restore-") as work:
        out = Path(work) / member
        with tarfile.open(source, "r:*") as archive:
            try:
                handle = archive.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise BackupError(f"{source}: the backup has no {member}")
            with handle, out.open("wb") as copy:
                shutil.copyfileobj(handle, copy)
        yield out


async def _has_tables(db: Database) -> bool:
    async with db.engine.connect() as conn:
        if db.is_postgres:
            query = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        else:
            query = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        return bool(await conn.scalar(text(query)))


async def _counts(conn: AsyncConnection) -> dict[str, int]:
    return {name: int(await conn.scalar(text(query)) or 0) for name, query in COUNTS.items()}


async def _revision(conn: AsyncConnection) -> str | None:
    return await conn.scalar(text("SELECT version_num FROM alembic_version"))


async def _check_key(conn: AsyncConnection, cipher: PiiCipher) -> None:
    _try_key(cipher, await conn.scalar(text(_SAMPLE)))


def _try_key(cipher: PiiCipher, sample: bytes | None) -> None:
    if sample is None:
        return
    try:
        cipher.decrypt(bytes(sample), "phone")
    except Exception:
        raise BackupError(
            "MINYI_PII_KEY does not decrypt this database's contacts: it is not the key the data "
            "was written with"
        ) from None


def _manifest(
    database: str, revision: str | None, cipher: PiiCipher, counts: dict[str, int]
) -> Manifest:
    return Manifest(
        format=FORMAT,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        database=database,
        revision=revision,
        key_check=cipher.key_check(),
        counts=counts,
    )
