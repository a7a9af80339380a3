"""Backups hold the photos (issue 17, part 6): from a local directory the files are copied into
the backup and put back by a restore; from an S3 bucket they are listed with their checksums and
checked at restore (or copied with --with-files). A restore refuses, before it touches the
database, a backup whose photos are not what its manifest says."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from storage.backup import FILES, MANIFEST
from storage.models import Attachment
from storage.photos import thumbnail_key
from tests.conftest import settings_for, sqlite_settings
from tests.photo_samples import jpeg_with_gps
from tests.s3_kit import KEYS, bucket_keys, make_bucket, s3_endpoint  # noqa: F401 (a fixture)
from tests.test_backup import _has_tables, command, empty_postgres  # noqa: F401 (a fixture)
from tests.test_photo_sweep import at_photo_step, finish, upload


async def an_office_with_photos(minyi: Minyi) -> tuple[list[str], str, str]:
    """A filed case with two photos, a form left open with one, and a fetch's spare photo."""
    filer = await at_photo_step(minyi, "filer")
    filed = [await upload(minyi, "filer"), await upload(minyi, "filer")]
    await finish(filer)
    await at_photo_step(minyi, "open-form")
    held = await upload(minyi, "open-form")
    spare = await minyi.photos.keep(jpeg_with_gps((50, 30)))
    return filed, held, spare


def files_in(settings: Settings) -> set[str]:
    root = Path(settings.files_dir or "")
    return {str(path.relative_to(root)) for path in root.rglob("*.jpg")}


async def plain(minyi: Minyi, key: str) -> bytes | None:
    found = await minyi.files.get(key)
    return None if found is None else found.data


@pytest.fixture(params=("sqlite", "postgres"))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    (tmp_path / "source").mkdir()
    return settings_for(request, request.param, tmp_path / "source")


def target_of(request: pytest.FixtureRequest, source: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "restored").mkdir()
    if source.is_embedded_database:
        url = f"sqlite+aiosqlite:///{tmp_path}/restored/minyi.db"
    else:
        url = request.getfixturevalue("empty_postgres")
    return source.replace(database_url=url, files_dir=f"{tmp_path}/restored/files")


async def test_a_directory_s_photos_are_in_the_backup_and_come_back(
    request: pytest.FixtureRequest, source: Settings, tmp_path: Path
) -> None:
    async with open_minyi(source) as minyi:
        filed, held, spare = await an_office_with_photos(minyi)
        before = {key: await plain(minyi, key) for key in [*filed, held]}
    backup_file = tmp_path / "office.backup"
    assert await command("backup", source, str(backup_file)) == 0

    with tarfile.open(backup_file) as archive:
        manifest = json.loads(archive.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        members = {
            m.name.removeprefix(FILES): archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.name.startswith(FILES)
        }
    wanted = {k for key in [*filed, held] for k in (key, thumbnail_key(key))}
    assert manifest["files"]["copied"] is True and manifest["files"]["missing"] == []
    assert set(manifest["files"]["files"]) == set(members) == wanted  # not the spare
    for key, data in members.items():
        assert hashlib.sha256(data).hexdigest() == manifest["files"]["files"][key]
        assert b"\xff\xd8" not in data[:4]  # sealed as in the store, never a plain JPEG

    target = target_of(request, source, tmp_path)
    assert await command("restore", target, str(backup_file), replace=False) == 0
    assert files_in(target) == wanted
    async with open_minyi(target) as restored:
        for key, data in before.items():
            assert await plain(restored, key) == data  # opens with the key, the same photo
            assert await plain(restored, thumbnail_key(key)) is not None
        async with restored.units() as uow:
            keys = set(await uow.session.scalars(select(Attachment.file_key)))
        assert keys == set(filed)
    assert spare not in members


async def test_a_damaged_photo_in_the_backup_stops_the_restore_before_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "source").mkdir()
    source = sqlite_settings(tmp_path / "source")
    async with open_minyi(source) as minyi:
        await an_office_with_photos(minyi)
    good = tmp_path / "good.backup"
    assert await command("backup", source, str(good)) == 0
    bad = tmp_path / "bad.backup"
    with tarfile.open(good) as inside, tarfile.open(bad, "w:gz") as out:
        for member in inside.getmembers():
            data = inside.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith(FILES) and member.name.endswith(".thumb.jpg"):
                data = data[:-1] + bytes([data[-1] ^ 1])  # one bit flipped
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    (tmp_path / "restored").mkdir()
    target = source.replace(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/restored/minyi.db",
        files_dir=f"{tmp_path}/restored/files",
    )
    assert await command("restore", target, str(bad), replace=False) == 1
    assert "missing or damaged in the backup" in capsys.readouterr().err
    assert not await _has_tables(target)
    assert not files_in(target)


def in_bucket(settings: Settings, endpoint: str, bucket: str) -> Settings:
    return settings.replace(
        files_dir=None,
        files_s3_bucket=bucket,
        files_s3_endpoint=endpoint,
        files_s3_access_key=KEYS["access_key"],
        files_s3_secret_key=KEYS["secret_key"],
        files_s3_prefix="office/",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_bucket_s_photos_are_listed_or_copied(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    s3_endpoint: str,  # noqa: F811 (the fixture)
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, fresh = f"live-{secrets.token_hex(3)}", f"fresh-{secrets.token_hex(3)}"
    await make_bucket(s3_endpoint, bucket)
    await make_bucket(s3_endpoint, fresh)
    (tmp_path / "source").mkdir()
    source = in_bucket(settings_for(request, backend, tmp_path / "source"), s3_endpoint, bucket)
    async with open_minyi(source) as minyi:
        filed, held, _ = await an_office_with_photos(minyi)
        before = {key: await plain(minyi, key) for key in [*filed, held]}
    wanted = {k for key in [*filed, held] for k in (key, thumbnail_key(key))}

    # By default the bucket is its own backup: the files are listed and checked, not copied.
    listed = tmp_path / "listed.backup"
    assert await command("backup", source, str(listed), with_files=False) == 0
    assert "listed with their checksums" in capsys.readouterr().out
    with tarfile.open(listed) as archive:
        assert not [n for n in archive.getnames() if n.startswith(FILES)]
        manifest = json.loads(archive.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["files"]["copied"] is False and set(manifest["files"]["files"]) == wanted
    copied = tmp_path / "copied.backup"
    assert await command("backup", source, str(copied), with_files=True) == 0

    target = target_of(request, source, tmp_path)
    target = in_bucket(target, s3_endpoint, bucket)
    assert await command("restore", target, str(listed), replace=False) == 0
    async with open_minyi(target) as restored:
        for key, data in before.items():
            assert await plain(restored, key) == data
        # An object lost from the bucket: the listed backup cannot be restored whole.
        await restored.files.inner.delete(thumbnail_key(filed[0]))
    assert await command("restore", target, str(listed), replace=True) == 1
    assert "missing or changed in the file store" in capsys.readouterr().err
    # Told that it is fine: the cases come back, that thumbnail shows as missing.
    assert await command("restore", target, str(listed), replace=True, missing_photos_ok=True) == 0
    assert "1 are gone from the store since" in capsys.readouterr().out

    # The copied backup brings every file back, into another (empty) bucket.
    elsewhere = in_bucket(target, s3_endpoint, fresh)
    assert await command("restore", elsewhere, str(copied), replace=True) == 0
    assert set(await bucket_keys(s3_endpoint, fresh)) == {f"office/{k}" for k in wanted}
    async with open_minyi(elsewhere) as restored:
        for key, data in before.items():
            assert await plain(restored, key) == data
