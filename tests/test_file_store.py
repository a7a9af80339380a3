"""The file store: put, get and delete by key, kept to its directory, readable by Minyi alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from storage.crypto import PiiCipher
from storage.files import BadKey, LocalFileStore, SealedFileStore, files_dir_for


async def test_a_file_comes_back_with_its_type_and_is_gone_once_deleted(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    await store.put("photos/ab12.jpg", b"\xff\xd8jpeg", "image/jpeg")
    found = await store.get("photos/ab12.jpg")
    assert found is not None
    assert (found.data, found.content_type) == (b"\xff\xd8jpeg", "image/jpeg")
    await store.put("photos/ab12.jpg", b"second", "image/png")
    again = await store.get("photos/ab12.jpg")
    assert again is not None and (again.data, again.content_type) == (b"second", "image/png")
    await store.delete("photos/ab12.jpg")
    assert await store.get("photos/ab12.jpg") is None
    await store.delete("photos/ab12.jpg")  # deleting what is not there is no error
    assert await store.get("photos/never.jpg") is None


async def test_files_and_directories_are_for_minyi_alone(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    await store.put("photos/x/one.jpg", b"data", "image/jpeg")
    file = tmp_path / "files" / "photos" / "x" / "one.jpg"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert not list(file.parent.glob("*.partial"))


@pytest.mark.parametrize(
    "key", ["../outside", "photos/../../etc/passwd", "/etc/passwd", "", "a//b", "photos/.", "a b"]
)
async def test_a_key_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    store = LocalFileStore(tmp_path / "files")
    with pytest.raises(BadKey):
        await store.put(key, b"x", "image/jpeg")
    with pytest.raises(BadKey):
        await store.get(key)
    assert not (tmp_path / "outside").exists()


async def test_a_content_type_must_look_like_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await LocalFileStore(tmp_path).put("photos/a.jpg", b"x", "image/jpeg\r\nX-Evil: 1")


def test_the_default_directory_sits_beside_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/minyi.db"
    assert files_dir_for(url) == tmp_path / "minyi-files"
    assert files_dir_for("postgresql+asyncpg://u@h/db") == Path("minyi-files").resolve()


async def test_sealed_files_are_unreadable_on_disk_and_follow_a_key_rotation(
    tmp_path: Path,
) -> None:
    old_key, new_key = b"o" * 32, b"n" * 32
    local = LocalFileStore(tmp_path / "files")
    sealed = SealedFileStore(local, PiiCipher(old_key))
    await sealed.put("photos/p.jpg", b"\xff\xd8 a citizen's face", "image/jpeg")
    raw = (tmp_path / "files" / "photos" / "p.jpg").read_bytes()
    assert b"citizen" not in raw and not raw.startswith(b"\xff\xd8")
    found = await sealed.get("photos/p.jpg")
    assert found is not None and found.data == b"\xff\xd8 a citizen's face"
    # A file copied under another key's name does not open (the key is bound in).
    await local.put("photos/q.jpg", raw, "image/jpeg")
    with pytest.raises(InvalidTag):
        await sealed.get("photos/q.jpg")

    rotating = SealedFileStore(local, PiiCipher(new_key, old_key))
    assert await rotating.reseal("photos/p.jpg") is True
    assert await rotating.reseal("photos/p.jpg") is False  # done already: a rerun skips it
    assert await rotating.reseal("photos/missing.jpg") is False
    after = await SealedFileStore(local, PiiCipher(new_key)).get("photos/p.jpg")
    assert after is not None and after.data == b"\xff\xd8 a citizen's face"
