"""`minyi keys rotate`: personal data re-encrypted under MINYI_PII_KEY from MINYI_PII_KEY_OLD."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from bot.app.settings import Settings, SettingsError
from bot.app.wiring import file_store, pii_cipher, prepare_schema
from storage.db import Database
from storage.keycheck import KeyMismatch
from storage.rotation import rotate
from storage.s3_files import S3FileStore


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="the personal-data key")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate_command = keys_commands.add_parser(
        "rotate",
        help="re-encrypt personal data from MINYI_PII_KEY_OLD to MINYI_PII_KEY (resumable)",
    )
    rotate_command.add_argument("--batch", type=int, default=500, help="rows per transaction")


async def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stderr) -> int:
    if not settings.pii_key or not settings.pii_key_old:
        raise SettingsError(
            "MINYI_PII_KEY_OLD: to rotate, set it to the key in use now and MINYI_PII_KEY to "
            "the new one"
        )
    db = Database(settings.database_url)
    cipher, _ = pii_cipher(settings, db)
    if cipher.check == cipher.old_check:
        raise SettingsError("MINYI_PII_KEY: the new key is the old one")
    shown = {"table": ""}

    def progress(table: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        end = "\n" if done >= total else ""
        if out.isatty():
            out.write(f"\r{table:<22} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        elif done >= total or shown["table"] != table:
            out.write(f"{table}: {done}/{total}\n")
        shown["table"] = table
        out.flush()

    files = file_store(settings, cipher)  # the photos are sealed with the key too
    bucket = files.inner if isinstance(files.inner, S3FileStore) else None
    try:
        await prepare_schema(db, exact=True)
        if bucket is not None:
            await bucket.start()
        done = await rotate(db, cipher, batch=max(1, args.batch), progress=progress, files=files)
    except KeyMismatch as exc:
        raise SettingsError(str(exc)) from None
    finally:
        if bucket is not None:
            await bucket.close()
        await db.dispose()
    out.write(
        f"rotated: {done.rows} rows read, {done.resealed} values re-encrypted, "
        f"{done.rehashed} phone hashes recomputed; the database now expects MINYI_PII_KEY\n"
    )
    return 0
