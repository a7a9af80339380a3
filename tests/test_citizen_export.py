"""`minyi citizen export --phone`: a person's request to see what is held about them, answered
from the keyed hash of their number — their cases, timelines and accounts, nobody else's."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from bot.app import citizen_cli
from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from storage.models import StaffThread
from storage.people import SMS_ROUTE, sms_conversation_id
from storage.staff_threads import add_message

from .conftest import Citizen
from .test_photo_sweep import at_photo_step, finish, upload


async def export(settings: Settings, phone: str, output: Path | None = None) -> int:
    args = argparse.Namespace(
        command="citizen", citizen_command="export", phone=phone, output=output
    )
    return await asyncio.to_thread(citizen_cli.run, settings, args)


async def file_as(citizen: Citizen, phone: str, description: str) -> str:
    for text in ("1", "4", description, "幸福路12号东门", "跳过", "张三", phone):
        await citizen.say(text)
    receipt = await citizen.say("1")
    return receipt.split("编号是 ")[1].split("，")[0]


async def test_the_export_holds_the_persons_own_cases_and_nothing_else(
    database_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_minyi(database_settings) as minyi:
        first = await file_as(
            Citizen(minyi, sender="web-a"), "13800138000", "路灯坏了一个多月了，晚上很黑。"
        )
        second = await file_as(
            Citizen(minyi, sender="web-a"), "13800138000", "下水道堵了三天，污水漫到路面。"
        )
        other = await file_as(
            Citizen(minyi, sender="web-b"), "13912345678", "邻居装修噪音从早到晚不停。"
        )
        async with minyi.units() as uow:
            case = await uow.cases.by_code(first)
            assert case is not None
            thread = StaffThread(case_id=case.id, channel="webchat", external_id="web-a")
            uow.session.add(thread)
            await uow.session.flush()
            await add_message(uow, thread.id, "citizen", "路灯在东门第三根")
            # They also texted Minyi: that SMS conversation keeps their mobile, sealed.
            texted = await uow.people.identity(
                "sms", sms_conversation_id(uow.cipher, "+8613800138000")
            )
            texted.phone_enc = uow.cipher.encrypt("+8613800138000", SMS_ROUTE)
            await uow.commit()

    assert await export(database_settings, "138 0013 8000") == 0
    said = capsys.readouterr()
    held = json.loads(said.out)
    assert "2 case(s) and 2 account(s) held" in said.err
    assert held["phone"] == "+8613800138000"
    assert held["person"]["name"] == "张三" and held["person"]["phone"] == "+8613800138000"
    assert [(a["channel"], a["phone"]) for a in held["accounts"]] == [
        ("webchat", ""),
        ("sms", "+8613800138000"),
    ]
    assert held["accounts"][0]["id"] == "web-a"
    assert [c["code"] for c in held["cases"]] == [first, second]
    assert held["cases"][0]["events"][0]["type"] == "submitted"
    assert held["cases"][0]["conversations_with_staff"][0]["text"] == "路灯在东门第三根"
    assert other not in said.out and "13912345678" not in said.out and "邻居" not in said.out

    # To a file only its owner can read, for handing over.
    out = tmp_path / "export.json"
    assert await export(database_settings, "+8613912345678", out) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert [c["code"] for c in json.loads(out.read_text())["cases"]] == [other]

    # Nobody behind a number: an answer with nothing in it. Not a number: refused.
    assert await export(database_settings, "13700000000") == 0
    empty = json.loads(capsys.readouterr().out)
    assert empty["person"] is None and empty["cases"] == [] and empty["accounts"] == []
    assert await export(database_settings, "12345") == 2
    assert "is not a mobile number" in capsys.readouterr().err


async def test_the_export_hands_over_the_persons_photos(
    database_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_minyi(database_settings) as minyi:
        citizen = await at_photo_step(minyi, "web-photos")
        keys = [await upload(minyi, "web-photos"), await upload(minyi, "web-photos")]
        code = await finish(citizen)  # filed as 张三, 13800138000
        await at_photo_step(minyi, "web-other")
        await upload(minyi, "web-other")
        await finish(Citizen(minyi, sender="web-other"), "13912345678")
        originals = [await minyi.files.get(key) for key in keys]

    # JSON alone lists them, with checksums, and says how to have the photos.
    assert await export(database_settings, "13800138000") == 0
    said = capsys.readouterr()
    listed = next(c for c in json.loads(said.out)["cases"] if c["code"] == code)["photos"]
    assert "2 photo(s)" in said.err and ".zip" in said.err
    assert len(listed) == 2

    out = tmp_path / "export.zip"
    assert await export(database_settings, "13800138000", out) == 0
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with zipfile.ZipFile(out) as archive:
        held = json.loads(archive.read("export.json"))
        names = sorted(archive.namelist())
        photos = {name: archive.read(name) for name in names if name.startswith("photos/")}
    (case,) = [c for c in held["cases"] if c["code"] == code]
    assert [p["sha256"] for p in case["photos"]] == [p["sha256"] for p in listed]
    assert names == sorted(["export.json", *(p["file"] for p in case["photos"])])
    for entry, original in zip(case["photos"], originals, strict=True):
        assert original is not None
        data = photos[entry["file"]]
        assert data == original.data and data[:2] == b"\xff\xd8"  # a JPEG anyone can open
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(photos) == 2  # the other person's photo is not in it
