"""The personal-data key is the database's own (issue 13, item 2): a missing key file or another
MINYI_PII_KEY is refused with one line naming it, no new key is made over encrypted rows,
/readyz fails when the database knows another key, and `minyi keys rotate` re-encrypts
everything, in batches, resumably."""

from __future__ import annotations

import argparse
import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from bot.app import key_rotation
from bot.app.appkeys import MINYI
from bot.app.settings import Settings, SettingsError
from bot.app.web import create_app
from bot.app.wiring import open_minyi, pii_cipher
from storage.crypto import PiiCipher, parse_key
from storage.models import Attachment, Case, Citizen, KeyCheck
from storage.photos import thumbnail_key
from storage.rotation import rotate
from tests.conftest import PII_KEY
from tests.conftest import Citizen as Talker
from tests.photo_samples import jpeg_with_gps

OTHER_KEY = base64.urlsafe_b64encode(b"o" * 32).decode()
CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


async def file_one(settings: Settings, sender: str = "citizen-1") -> str:
    async with open_minyi(settings) as rt:
        reply = await Talker(rt, sender=sender).file_a_matter()
    found = CODE.search(reply)
    assert found, reply
    return found.group()


async def contact_of(settings: Settings, code: str) -> tuple[str, str]:
    async with open_minyi(settings) as rt, rt.units() as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        return uow.cases.contact(case)


async def test_a_deleted_key_file_is_not_replaced(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db")
    await file_one(settings)
    key_file = tmp_path / "minyi.db.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.unlink()
    with pytest.raises(SettingsError) as refused:
        async with open_minyi(settings):
            pass
    message = str(refused.value)
    assert message.startswith(str(key_file.resolve()) + ": ") and "\n" not in message
    assert "missing" in message
    assert not key_file.exists()  # no new key over encrypted rows


async def test_a_fresh_database_gets_its_key_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db")
    async with open_minyi(settings) as rt:
        async with rt.db.session() as session:
            stored = await session.get(KeyCheck, "pii")
        assert stored is not None and stored.value == rt.cipher.check
    assert (tmp_path / "minyi.db.key").stat().st_mode & 0o777 == 0o600


async def test_another_pii_key_is_refused_by_name(database_settings: Settings) -> None:
    await file_one(database_settings)
    with pytest.raises(SettingsError) as refused:
        async with open_minyi(database_settings.replace(pii_key=OTHER_KEY)):
            pass
    assert str(refused.value).startswith("MINYI_PII_KEY: this is not the key")


async def test_a_database_from_before_the_check_is_recognised_by_its_data(
    database_settings: Settings,
) -> None:
    code = await file_one(database_settings)
    async with open_minyi(database_settings) as rt, rt.db.session() as session:
        await session.execute(delete(KeyCheck))  # as a database from before 0012
        await session.commit()
    with pytest.raises(SettingsError, match=r"^MINYI_PII_KEY: this is not the key"):
        async with open_minyi(database_settings.replace(pii_key=OTHER_KEY)):
            pass
    assert await contact_of(database_settings, code) == ("张三", "+8613800138000")


async def test_readyz_fails_when_the_database_knows_another_key(
    aiohttp_client: Any, database_settings: Settings
) -> None:
    client = await aiohttp_client(create_app(database_settings, workers=False))
    assert (await client.get("/readyz")).status == 200
    minyi = client.app[MINYI]
    async with minyi.db.session() as session:
        await session.execute(update(KeyCheck).values(value="0" * 64))
        await session.commit()
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["pii_key"] == "failed: not the database's key"


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    key_file = tmp_path / "minyi.db.key"
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db")
    from storage.db import Database

    with pytest.raises(SettingsError) as refused:
        pii_cipher(settings, Database(settings.database_url))
    assert str(refused.value).startswith(f"{key_file.resolve()}: the personal-data key file")


async def test_rotation_reencrypts_everything_and_resumes(database_settings: Settings) -> None:
    code = await file_one(database_settings)
    second = await file_one(database_settings, sender="citizen-2")
    rotating = database_settings.replace(pii_key=OTHER_KEY, pii_key_old=PII_KEY)
    # A run stopped after its first batch of cases...
    async with open_minyi(rotating) as rt:
        cipher = rt.cipher

        def stop_in_cases(table: str, done: int, total: int) -> None:
            if table == "cases":
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await rotate(rt.db, cipher, batch=1, progress=stop_in_cases)
        # ...leaves the database still expecting the old key (both are accepted meanwhile).
        async with rt.db.session() as session:
            assert (await session.get(KeyCheck, "pii")).value == cipher.old_check  # type: ignore[union-attr]
    # Run again through the command: it finishes, skipping what is done.
    out = io.StringIO()
    assert await key_rotation.run(rotating, argparse.Namespace(batch=1), out=out) == 0
    assert "cases: 2/2" in out.getvalue() and "re-encrypted" in out.getvalue()
    # Now the new key alone opens everything, and phones are found by their new hash.
    only_new = database_settings.replace(pii_key=OTHER_KEY)
    assert await contact_of(only_new, code) == ("张三", "+8613800138000")
    assert await contact_of(only_new, second) == ("张三", "+8613800138000")
    new_cipher = PiiCipher(parse_key(OTHER_KEY))
    async with open_minyi(only_new) as rt, rt.db.session() as session:
        for blob in (await session.scalars(select(Case.contact_phone_enc))).all():
            assert new_cipher.sealed_by_current(blob, "phone")
        hashes = (await session.scalars(select(Citizen.phone_hash))).all()
        assert hashes == [new_cipher.phone_hash("+8613800138000")]
    with pytest.raises(SettingsError, match=r"^MINYI_PII_KEY: this is not the key"):
        async with open_minyi(database_settings):  # the old key alone is refused now
            pass


async def test_the_command_stops_with_one_line_naming_the_key_file(tmp_path: Path) -> None:
    from tests.test_cli import minyi

    await file_one(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db"))
    (tmp_path / "minyi.db.key").unlink()
    result = minyi("worker", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    # Only alembic's progress lines besides it (logging is on), and one line that says why.
    (line,) = [x for x in result.stderr.strip().splitlines() if " INFO alembic." not in x]
    assert line.startswith(f"minyi: {(tmp_path / 'minyi.db.key').resolve()}: ")


async def test_the_embedded_database_files_are_private(tmp_path: Path) -> None:
    """Issue 13: the SQLite file (and its WAL) hold descriptions, addresses and openids: 0600."""
    import os

    old = os.umask(0o022)  # the usual umask, which made them 0644
    try:
        await file_one(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db"))
    finally:
        os.umask(old)
    modes = file_modes(tmp_path)
    assert "minyi.db" in modes and "minyi.db.key" in modes
    assert set(modes.values()) == {0o600}, modes


def file_modes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}


async def test_rotation_reseals_the_citizens_photos(database_settings: Settings) -> None:
    await file_one(database_settings)
    async with open_minyi(database_settings) as rt:
        key = await rt.photos.keep(jpeg_with_gps())
        async with rt.units() as uow:
            case = await uow.session.scalar(select(Case).limit(1))
            assert case is not None
            uow.session.add(
                Attachment(case_id=case.id, kind="image", channel="webchat", ref=key, file_key=key)
            )
            await uow.commit()
        before = await rt.files.get(key)
        # A photo an open form holds, no case yet: in the ledger of uploads only.
        held = await rt.photos.keep(jpeg_with_gps((40, 30)), "webchat:open-form")
        held_before = await rt.files.get(held)
    assert before is not None and held_before is not None
    rotating = database_settings.replace(pii_key=OTHER_KEY, pii_key_old=PII_KEY)
    out = io.StringIO()
    assert await key_rotation.run(rotating, argparse.Namespace(batch=1), out=out) == 0
    assert "attachments (files): 1/1" in out.getvalue()
    assert "uploads (files): 2/2" in out.getvalue()
    async with open_minyi(database_settings.replace(pii_key=OTHER_KEY)) as rt:
        after = await rt.files.get(key)
        thumb = await rt.files.get(thumbnail_key(key))
        held_after = await rt.files.get(held)
    assert after is not None and after.data == before.data and thumb is not None
    assert held_after is not None and held_after.data == held_before.data
