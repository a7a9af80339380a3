"""`minyi backup` and `minyi restore`: the database and its photos in one file, the key kept
apart."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from bot.app.settings import Settings, SettingsError
from bot.app.wiring import file_store
from storage import migrate, schema_compat
from storage.backup import BackupError, Manifest, Photos, backup, restore
from storage.crypto import PiiCipher, key_file_for, parse_key
from storage.db import Database
from storage.files import FileStore
from storage.s3_files import S3FileStore


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    make = commands.add_parser(
        "backup", help="write a consistent copy of the database to one file (never the key)"
    )
    make.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the file to write (default: minyi-<UTC time>.backup here)",
    )
    make.add_argument(
        "--with-files",
        action="store_true",
        help="copy the photos from the S3 bucket too (a local directory's always are)",
    )
    back = commands.add_parser(
        "restore", help="bring a backup into MINYI_DATABASE_URL (a new, empty database)"
    )
    back.add_argument("file", type=Path, help="a file `minyi backup` wrote")
    back.add_argument(
        "--replace", action="store_true", help="overwrite a database that already has tables"
    )
    back.add_argument(
        "--missing-photos-ok",
        action="store_true",
        help="restore a backup that listed a bucket's photos even when some are gone from it",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            with_files = getattr(args, "with_files", False)
            return asyncio.run(_backup(settings, args.output, with_files=with_files))
        if not args.file.is_file():
            raise BackupError(f"{args.file}: no such file")
        missing_ok = getattr(args, "missing_photos_ok", False)
        return asyncio.run(
            _restore(settings, args.file, replace=args.replace, missing_photos_ok=missing_ok)
        )
    except BackupError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 1


async def _backup(settings: Settings, output: Path | None, *, with_files: bool) -> int:
    db = Database(settings.database_url)
    target = output or Path(f"minyi-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.backup")
    try:
        cipher = _existing_key(settings, db)
        async with _photo_store(settings, cipher) as (files, in_bucket):
            photos = Photos(files, copy=with_files or not in_bucket)
            manifest = await backup(db, cipher, target, photos)
    finally:
        await db.dispose()
    print(f"backup written to {target}")
    print(_describe(manifest))
    print(_describe_files(manifest))
    print(
        "The personal-data key is not in it. Keep MINYI_PII_KEY (or the .key file) apart from "
        f"the backups; its check is {manifest.key_check}."
    )
    return 0


async def _restore(
    settings: Settings, source: Path, *, replace: bool, missing_photos_ok: bool
) -> int:
    db = Database(settings.database_url)
    try:
        cipher = _existing_key(settings, db)
        async with _photo_store(settings, cipher) as (files, _):
            manifest = await restore(
                db,
                cipher,
                source,
                replace=replace,
                files=files,
                missing_photos_ok=missing_photos_ok,
            )
        revision = await migrate.current_revision(db)
    finally:
        await db.dispose()
    print(f"restored {source}")
    print(_describe(manifest))
    print(_describe_files(manifest))
    history = schema_compat.code_history()
    if revision not in history.known:  # a backup of a newer release
        print(
            f"The schema is at {revision}, newer than this code ({history.head}): serve it "
            "with the release the backup was taken with."
        )
    elif revision != history.head:
        print(f"The schema is at {revision}; run `minyi db upgrade` to bring it to {history.head}.")
    print(
        "Unpublished outbox entries go out when `minyi worker` (or serve) starts; those "
        "published before the backup are not sent again."
    )
    return 0


def _existing_key(settings: Settings, db: Database) -> PiiCipher:
    """The key the restored data needs; never a new one (that is what `pii_cipher` would make
    beside a SQLite file that has none yet)."""
    if settings.pii_key:
        try:
            return PiiCipher(parse_key(settings.pii_key))
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    database = db.url.database or ""
    key_file = key_file_for(Path(database).resolve())
    if not db.is_sqlite or not key_file.is_file():
        raise BackupError(
            f"no personal-data key: set MINYI_PII_KEY, or put the key file back at {key_file} "
            "first (backups never hold it)"
        )
    return PiiCipher(parse_key(key_file.read_text("ascii")))


@asynccontextmanager
async def _photo_store(
    settings: Settings, cipher: PiiCipher
) -> AsyncIterator[tuple[FileStore, bool]]:
    """The file store in use, as it stores (sealed bytes are copied as they are), and whether
    it is a bucket."""
    inner = file_store(settings, cipher).inner
    if not isinstance(inner, S3FileStore):
        yield inner, False
        return
    await inner.start()
    try:
        yield inner, True
    finally:
        await inner.close()


def _describe_files(manifest: Manifest) -> str:
    if manifest.files is None:
        return "  photos: not in this backup (taken before backups held them)"
    files, missing = manifest.files["files"], manifest.files["missing"]
    how = (
        "copied in"
        if manifest.files["copied"]
        else "listed with their checksums (the bucket keeps them)"
    )
    said = f"  photos: {len(files):,} files {how}"
    if missing:
        said += f"; {len(missing):,} named by the database were not in the store, e.g. {missing[0]}"
    gone = manifest.files.get("gone_from_store", [])
    if gone:
        said += f"; {len(gone):,} are gone from the store since (shown as missing), e.g. {gone[0]}"
    return said


def _describe(manifest: Manifest) -> str:
    counts = manifest.counts
    return (
        f"  {manifest.database} at schema {manifest.revision}, taken {manifest.created_at}: "
        f"{counts['cases']:,} cases, {counts['case_events']:,} timeline events, "
        f"{counts['citizens']:,} citizens, {counts['outbox']:,} outbox entries "
        f"({counts['outbox_unpublished']:,} not yet published); key check {manifest.key_check}"
    )
