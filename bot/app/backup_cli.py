"""`minyi backup` and `minyi restore`: the database in one file, the key kept apart."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.app.settings import Settings, SettingsError
from storage import migrate, schema_compat
from storage.backup import BackupError, Manifest, backup, restore
from storage.crypto import PiiCipher, key_file_for, parse_key
from storage.db import Database


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
    back = commands.add_parser(
        "restore", help="bring a backup into MINYI_DATABASE_URL (a new, empty database)"
    )
    back.add_argument("file", type=Path, help="a file `minyi backup` wrote")
    back.add_argument(
        "--replace", action="store_true", help="overwrite a database that already has tables"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            return asyncio.run(_backup(settings, args.output))
        if not args.file.is_file():
            raise BackupError(f"{args.file}: no such file")
        return asyncio.run(_restore(settings, args.file, replace=args.replace))
    except BackupError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 1


async def _backup(settings: Settings, output: Path | None) -> int:
    db = Database(settings.database_url)
    target = output or Path(f"minyi-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.backup")
    try:
        manifest = await backup(db, _existing_key(settings, db), target)
    finally:
        await db.dispose()
    print(f"backup written to {target}")
    print(_describe(manifest))
    print(
        "The personal-data key is not in it. Keep MINYI_PII_KEY (or the .key file) apart from "
        f"the backups; its check is {manifest.key_check}."
    )
    return 0


async def _restore(settings: Settings, source: Path, *, replace: bool) -> int:
    db = Database(settings.database_url)
    try:
        manifest = await restore(db, _existing_key(settings, db), source, replace=replace)
        revision = await migrate.current_revision(db)
    finally:
        await db.dispose()
    print(f"restored {source}")
    print(_describe(manifest))
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


def _describe(manifest: Manifest) -> str:
    counts = manifest.counts
    return (
        f"  {manifest.database} at schema {manifest.revision}, taken {manifest.created_at}: "
        f"{counts['cases']:,} cases, {counts['case_events']:,} timeline events, "
        f"{counts['citizens']:,} citizens, {counts['outbox']:,} outbox entries "
        f"({counts['outbox_unpublished']:,} not yet published); key check {manifest.key_check}"
    )
