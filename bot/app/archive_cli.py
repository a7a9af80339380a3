"""`minyi archive --to DIR`: closed cases past their retention exported (their photos beside
them), then their personal data erased and their photos deleted from the live store (信访档案
kept by the office's rules, PIPL's deletion when the period ends)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from storage.retention import Retention, archive_and_erase, due


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    archive = commands.add_parser(
        "archive",
        help="export closed cases past MINYI_RETENTION_YEARS to files, then erase their personal data",
    )
    archive.add_argument("--to", type=Path, required=True, help="folder for the archive files")
    archive.add_argument("--dry-run", action="store_true", help="only list the cases that are due")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.retention_years:
        print(
            "minyi: MINYI_RETENTION_YEARS is not set (e.g. petition=10,suggestion=3): "
            "cases are kept for good and nothing is archived",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_run(settings, args.to, dry_run=args.dry_run))


async def _run(settings: Settings, folder: Path, *, dry_run: bool) -> int:
    retention = Retention(dict(settings.retention_years))
    async with open_minyi(settings) as minyi:
        codes = await due(minyi.units, retention)
        for code in codes:
            if dry_run:
                print(code)
                continue
            path = await archive_and_erase(minyi.units, retention, folder, code, files=minyi.files)
            print(f"{code}: archived to {path}, personal data erased")
    verb = "due" if dry_run else "archived"
    print(f"{len(codes)} case(s) {verb}", file=sys.stderr)
    return 0
