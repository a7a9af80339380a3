"""`minyi citizen export --phone …`: what is held about one person, as JSON (PIPL Art. 45), or
as a zip with their photos (`-o FILE.zip`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.validators import Invalid, phone
from storage.citizen_export import held_about


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    citizen = commands.add_parser("citizen", help="a citizen's own data (查询个人信息)")
    actions = citizen.add_subparsers(dest="citizen_command", required=True)
    export = actions.add_parser(
        "export", help="everything held about the holder of a phone number, as JSON"
    )
    export.add_argument("--phone", required=True, help="the mobile number, e.g. 13800138000")
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write to this file (mode 0600) instead of stdout; a name ending in .zip holds the "
        "JSON and the photos",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    number = phone(args.phone)
    if isinstance(number, Invalid):
        print(f"minyi: {args.phone!r} is not a mobile number (e.g. 13800138000)", file=sys.stderr)
        return 2
    as_zip = args.output is not None and args.output.suffix.lower() == ".zip"
    photos: dict[str, bytes] = {}
    held = asyncio.run(_export(settings, number, photos))
    text = json.dumps(held, ensure_ascii=False, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if as_zip:
                _write_zip(out, text, photos)
            else:
                out.write(text.encode("utf-8"))
    found = len(held["cases"])
    print(
        f"minyi: {found} case(s) and {len(held['accounts'])} account(s) held for this number",
        file=sys.stderr,
    )
    listed = sum(len(case.get("photos", ())) for case in held["cases"])
    if listed and not as_zip:
        print(
            f"minyi: their cases have {listed} photo(s), listed with their checksums; "
            "write to a .zip (-o export.zip) to hand the photos over too",
            file=sys.stderr,
        )
    return 0


def _write_zip(out: Any, text: str, photos: dict[str, bytes]) -> None:
    """`export.json` and each photo under the name the JSON lists it by (JPEGs are stored as
    they are: compressed already)."""
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("export.json", text, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in photos.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)


async def _export(settings: Settings, number: str, photos: dict[str, bytes]) -> dict[str, Any]:
    async with open_minyi(settings) as minyi, minyi.units() as uow:
        return await held_about(uow, number, minyi.files, photos)
