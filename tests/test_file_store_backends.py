"""One contract for every file store: the local directory and, over real HTTP, an S3-compatible
server (moto's server mode) reached through aiobotocore; and the app picks S3 from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.settings import Settings, SettingsError, load_settings
from bot.app.wiring import open_minyi
from storage.files import BadKey, FileStore, LocalFileStore
from storage.photos import thumbnail_key
from storage.s3_files import S3FileStore
from tests.conftest import sqlite_settings
from tests.photo_samples import jpeg_with_gps
from tests.s3_kit import KEYS, make_bucket, s3_endpoint  # noqa: F401 (a fixture)


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStore]:
    if request.param == "local":
        yield LocalFileStore(tmp_path / "files")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    await make_bucket(endpoint, "minyi-contract")
    s3 = S3FileStore(
        "minyi-contract", endpoint_url=endpoint, region="us-east-1", prefix="office-1/", **KEYS
    )
    await s3.start()
    try:
        yield s3
    finally:
        await s3.close()


async def test_put_get_delete(store: FileStore) -> None:
    await store.put("photos/a1.jpg", b"\xff\xd8first", "image/jpeg")
    found = await store.get("photos/a1.jpg")
    assert found is not None and (found.data, found.content_type) == (
        b"\xff\xd8first",
        "image/jpeg",
    )
    await store.put("photos/a1.jpg", b"second", "image/png")
    again = await store.get("photos/a1.jpg")
    assert again is not None and (again.data, again.content_type) == (b"second", "image/png")
    await store.delete("photos/a1.jpg")
    assert await store.get("photos/a1.jpg") is None
    await store.delete("photos/a1.jpg")
    assert await store.get("photos/never.jpg") is None


async def test_bad_keys_and_types_are_refused(store: FileStore) -> None:
    with pytest.raises(BadKey):
        await store.put("../escape", b"x", "image/jpeg")
    with pytest.raises(BadKey):
        await store.get("/etc/passwd")
    with pytest.raises(ValueError):
        await store.put("photos/b.jpg", b"x", "image/jpeg\r\nX-Evil: 1")


async def test_the_app_keeps_photos_in_the_bucket_when_one_is_set(
    tmp_path: Path,
    s3_endpoint: str,  # noqa: F811 (the fixture)
) -> None:
    await make_bucket(s3_endpoint, "minyi-app")
    settings: Settings = sqlite_settings(
        tmp_path,
        files_s3_bucket="minyi-app",
        files_s3_endpoint=s3_endpoint,
        files_s3_access_key=KEYS["access_key"],
        files_s3_secret_key=KEYS["secret_key"],
    )
    async with open_minyi(settings) as minyi:
        assert isinstance(minyi.files.inner, S3FileStore)
        key = await minyi.photos.keep(jpeg_with_gps())
        assert await minyi.files.get(key) is not None
        assert await minyi.files.get(thumbnail_key(key)) is not None
    assert not list((tmp_path / "files").rglob("*.jpg"))  # nothing on the local disk


def test_a_bucket_without_its_keys_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="MINYI_FILES_S3_ACCESS_KEY"):
        load_settings({"MINYI_FILES_S3_BUCKET": "minyi"}, config_file=None)
