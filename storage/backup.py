"""Backups that restore: one file holding a consistent copy of the database and a manifest.

PostgreSQL is copied by `pg_dump` inside a snapshot exported from our own read-only
transaction, so the row counts in the manifest are those of the dump itself; SQLite by its
online backup API, which copies a consistent image while the service keeps writing. The
manifest carries the schema revision, those counts and a *key check*: a value derived from the
personal-data key that tells whether a key is the right one and nothing else. The key itself is
never written: a stolen backup without it holds no readable name or phone.

Photos: the manifest lists every file the copied database refers to (each case's photos and
thumbnails, and those an open form holds) with the SHA-256 of its stored (sealed) bytes. From
a local directory the files are copied into the backup, as they are (sealed with the same key);
from a bucket they are copied when asked (`Photos.copy`), else each is read once to check it is
there and whole, and the bucket's own versioning or replication is its backup. A restore checks
every file against the manifest before it touches the database, puts copied files back into
the store in use, and opens one with the key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
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
from .files import FileStore, SealedFileStore, check_key, thumbnail_key

FORMAT = "minyi-backup/2"
# Read too: a backup of the release before photos were in backups (no "files").
READS = frozenset({FORMAT, "minyi-backup/1"})
MANIFEST = "manifest.json"
PG_DUMP = "database.pgdump"
SQLITE_COPY = "database.sqlite"
FILES = "files/"  # each copied file under its key

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
# The photos the database refers to: the cases' and those open conversations hold (an upload
# of no conversation is one a case let go, or a fetch's spare, which the sweep deletes).
_PHOTOS = (
    "SELECT file_key FROM attachments WHERE file_key IS NOT NULL "
    "UNION SELECT file_key FROM uploads WHERE conversation <> '' ORDER BY 1"
)


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
    # {"copied": bool, "files": {key: sha256 of the stored bytes}, "missing": [key, ...]};
    # None in a backup of the release before photos were backed up.
    files: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") not in READS:
            raise BackupError(f"not a Minyi backup of a format this version reads ({FORMAT})")
        return cls(
            **{name: data[name] for name in cls.__dataclass_fields__ if name in data},
        )


@dataclass(frozen=True)
class Photos:
    """Where the photos are and what to do with them: `store` is the store in use, not sealed
    (its bytes are copied as they are); `copy` puts them in the backup."""

    store: FileStore
    copy: bool


async def backup(
    db: Database, cipher: PiiCipher, target: Path, photos: Photos | None = None
) -> Manifest:
    """Write a backup of `db` (and of the photos it refers to) to `target` (mode 0600;
    complete or not there at all)."""
    with tempfile.TemporaryDirectory(prefix="minyi-backup-") as work:
        folder = Path(work)
        if db.is_postgres:
            manifest, keys = await _dump_postgres(db, cipher, folder / PG_DUMP)
            member = PG_DUMP
        else:
            manifest, keys = await asyncio.to_thread(_copy_sqlite, _sqlite_path(db), folder, cipher)
            member = SQLITE_COPY
        copied: list[str] = []
        if photos is not None:
            # After the database's copy: a photo is written before any row names it, so every
            # photo the copy names is in the store now (unless something deleted it).
            files, missing = await _read_photos(photos, keys, folder / "files")
            copied = list(files) if photos.copy else []
            manifest = dataclasses.replace(
                manifest, files={"copied": photos.copy, "files": files, "missing": missing}
            )
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # SQLite's pages compress well; a pg_dump custom file and photos are compressed already
        # (gzip over them would cost the CPU time of the whole backup and save nothing).
        mode = "w:gz" if member == SQLITE_COPY and not copied else "w"
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode=mode) as archive:  # type: ignore[call-overload]
            (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2), "utf-8")
            archive.add(folder / MANIFEST, MANIFEST)
            archive.add(folder / member, member)
            for number, key in enumerate(copied):
                archive.add(folder / "files" / str(number), FILES + key)
        partial.replace(target)
    return manifest


async def _read_photos(
    photos: Photos, keys: list[str], out: Path
) -> tuple[dict[str, str], list[str]]:
    """Each file of the photos `keys` name (a photo and its thumbnail): its SHA-256, and its
    bytes in `out` when they are copied; and the files the store does not have."""
    await asyncio.to_thread(out.mkdir, mode=0o700)
    files: dict[str, str] = {}
    missing: list[str] = []
    for key in keys:
        for each in (key, thumbnail_key(key)):
            found = await photos.store.get(each)
            if found is None:
                missing.append(each)
                continue
            files[each] = hashlib.sha256(found.data).hexdigest()
            if photos.copy:
                await asyncio.to_thread((out / str(len(files) - 1)).write_bytes, found.data)
    return files, missing


def read_manifest(source: Path) -> Manifest:
    try:
        with tarfile.open(source, "r:*") as archive:
            handle = archive.extractfile(MANIFEST)
            if handle is None:
                raise KeyError(MANIFEST)
            return Manifest.from_json(json.loads(handle.read()))
    except (tarfile.TarError, KeyError, json.JSONDecodeError, TypeError) as exc:
        raise BackupError(f"{source}: not a Minyi backup ({type(exc).__name__})") from None


async def restore(
    db: Database,
    cipher: PiiCipher,
    source: Path,
    *,
    replace: bool,
    files: FileStore | None = None,
    missing_photos_ok: bool = False,
) -> Manifest:
    """Bring the backup at `source` into `db`, which must be empty unless `replace`, and its
    photos into `files` (the store in use, not sealed).

    Refused before anything is touched when the key is not the one the backup was made with:
    a database whose contacts nobody can read is no restore; or when a photo is not what the
    manifest says (a damaged backup, or a bucket missing objects). Afterwards the restored rows
    are counted and compared with the manifest, and one photo is opened with the key.

    A backup that only listed the photos (a bucket's) needs the bucket to have them still: one
    deleted since (archived, an abandoned form's swept) or re-sealed by a key rotation refuses
    the restore unless `missing_photos_ok` (the cases come back, those photos show as missing)."""
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
    listed: dict[str, str] = dict((manifest.files or {}).get("files", {}))
    copied = bool((manifest.files or {}).get("copied"))
    if listed and files is None:
        raise BackupError("this backup holds photos: give the file store to restore them into")
    if listed and files is not None:
        if copied:
            await asyncio.to_thread(_check_copied, source, listed)
        else:
            gone = await _check_in_store(files, listed, missing_photos_ok)
            if gone:  # told to the operator with the manifest
                assert manifest.files is not None
                manifest = dataclasses.replace(
                    manifest, files={**manifest.files, "gone_from_store": gone}
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
    if listed and files is not None:
        if copied:
            await _put_back(source, listed, files)
        await _open_one(files, cipher, listed)
    return manifest


def _check_copied(source: Path, listed: dict[str, str]) -> None:
    """Every listed file is in the backup with the manifest's checksum (and nothing else is)."""
    seen: dict[str, str] = {}
    with tarfile.open(source, "r:*") as archive:
        for member in archive:
            if not member.name.startswith(FILES):
                continue
            key = member.name.removeprefix(FILES)
            handle = archive.extractfile(member)
            if key not in listed or handle is None or not _is_key(key):
                raise BackupError(f"{source}: {member.name} is not in the backup's manifest")
            with handle:
                seen[key] = _sha256_of(handle)
    wrong = sorted(k for k in listed if seen.get(k) != listed[k])
    if wrong:
        raise BackupError(
            f"{source}: {len(wrong)} photo file(s) missing or damaged in the backup, e.g. "
            f"{wrong[0]}; nothing was restored"
        )


async def _check_in_store(files: FileStore, listed: dict[str, str], missing_ok: bool) -> list[str]:
    """A backup that did not copy the photos: the store must still have each, unchanged (or,
    when `missing_ok`, the files it has not)."""
    wrong = []
    for key, digest in listed.items():
        found = await files.get(key)
        if found is None or hashlib.sha256(found.data).hexdigest() != digest:
            wrong.append(key)
    if wrong and not missing_ok:
        raise BackupError(
            f"{len(wrong)} photo file(s) this backup names are missing or changed in the file "
            f"store, e.g. {wrong[0]}; restore the bucket (its versioning or replica) first, use "
            "a backup taken with --with-files, or pass --missing-photos-ok to restore the cases "
            "without them; nothing was restored"
        )
    for key in wrong:
        listed.pop(key)  # not opened with the key afterwards
    return wrong


async def _put_back(source: Path, listed: dict[str, str], files: FileStore) -> None:
    """Each copied file into the store (one that is already there, unchanged, is left)."""
    with tarfile.open(source, "r:*") as archive:
        for member in archive:
            if not member.name.startswith(FILES):
                continue
            key = check_key(member.name.removeprefix(FILES))
            handle = archive.extractfile(member)
            assert handle is not None  # checked before the database was touched
            with handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != listed[key]:
                raise BackupError(f"{source}: {member.name} changed while it was restored")
            there = await files.get(key)
            if there is None or hashlib.sha256(there.data).hexdigest() != listed[key]:
                await files.put(key, data, "image/jpeg")


async def _open_one(files: FileStore, cipher: PiiCipher, listed: dict[str, str]) -> None:
    """The photos are sealed with the key in use: one of them opens."""
    key = next(iter(listed))
    try:
        await SealedFileStore(files, cipher).get(key)
    except Exception:
        raise BackupError(
            f"the photo {key} does not open with MINYI_PII_KEY: it is not the key the photos "
            "were sealed with"
        ) from None


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except ValueError:
        return False
    return True


def _sha256_of(handle: Any) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


# -- PostgreSQL ------------------------------------------------------------------------------------


async def _dump_postgres(db: Database, cipher: PiiCipher, out: Path) -> tuple[Manifest, list[str]]:
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = await conn.scalar(text("SELECT pg_export_snapshot()"))
            await _check_key(conn, cipher)
            counts = await _counts(conn)
            revision = await _revision(conn)
            keys = [str(k) for k in await conn.scalars(text(_PHOTOS))]
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
    return _manifest("postgresql", revision, cipher, counts), keys


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


def _copy_sqlite(source: Path, folder: Path, cipher: PiiCipher) -> tuple[Manifest, list[str]]:
    if not source.is_file():
        raise BackupError(f"MINYI_DATABASE_URL: there is no database file at {source}")
    copy = folder / SQLITE_COPY
    with _sqlite(source) as live, _sqlite(copy) as out:
        live.backup(out)  # a consistent image, while other connections keep writing
    with _sqlite(copy) as out:
        counts = {name: int(out.execute(query).fetchone()[0]) for name, query in COUNTS.items()}
        revision = out.execute("SELECT version_num FROM alembic_version").fetchone()
        sample = out.execute(_SAMPLE).fetchone()
        keys = [str(row[0]) for row in out.execute(_PHOTOS)]
    _try_key(cipher, sample[0] if sample else None)
    return _manifest("sqlite", revision[0] if revision else None, cipher, counts), keys


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
