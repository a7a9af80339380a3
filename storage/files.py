"""Where citizens' files (photos and their thumbnails) are kept: one small interface, a local
directory by default (MINYI_FILES_DIR); an S3-compatible store can stand behind the same one."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from .crypto import PiiCipher

# Keys are made by Minyi (photos/<random>.jpg), never by a citizen; the rule still keeps any key
# inside the store's directory: no "..", no absolute paths, nothing but these characters.
KEY_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}){0,4}")
CONTENT_TYPE_RE = re.compile(r"[a-z]+/[a-z0-9.+-]{1,60}")


class BadKey(ValueError):
    """A key that could leave the store (or is not one Minyi makes)."""


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    content_type: str


class FileStore(Protocol):
    """Files by key. `put` replaces what the key held; `get` is None when there is nothing."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> StoredFile | None: ...

    async def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    if not KEY_RE.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise BadKey(f"not a file key: {key[:120]!r}")
    return key


def thumbnail_key(key: str) -> str:
    """A photo's thumbnail is kept beside it: photos/<random>.jpg, photos/<random>.thumb.jpg."""
    return key.removesuffix(".jpg") + ".thumb.jpg"


def files_dir_for(database_url: str) -> Path:
    """The default directory: beside a SQLite database file (its files stay with it, like its
    key), else ./minyi-files."""
    url = make_url(database_url)
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        path = Path(database).resolve()
        return path.with_name(path.stem + "-files")
    return Path("minyi-files").resolve()


class LocalFileStore:
    """A directory, readable by Minyi's user alone (0700 directories, 0600 files). A file is
    written beside its place and renamed into it, so a reader never sees half of one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if not CONTENT_TYPE_RE.fullmatch(content_type):
            raise ValueError(f"not a content type: {content_type[:80]!r}")
        await asyncio.to_thread(self._write, self._path(key), data, content_type)

    async def get(self, key: str) -> StoredFile | None:
        return await asyncio.to_thread(self._read, self._path(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._remove, self._path(key))

    def _write(self, path: Path, data: bytes, content_type: str) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The type is kept in a small file beside the data (a directory has no metadata).
        for target, body in ((_type_path(path), content_type.encode()), (path, data)):
            partial = target.with_name(target.name + ".partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)

    def _read(self, path: Path) -> StoredFile | None:
        try:
            data = path.read_bytes()
            content_type = _type_path(path).read_text("ascii").strip()
        except FileNotFoundError:
            return None
        return StoredFile(data, content_type)

    def _remove(self, path: Path) -> None:
        for target in (path, _type_path(path)):
            target.unlink(missing_ok=True)


def _type_path(path: Path) -> Path:
    return path.with_name(path.name + ".type")


class SealedFileStore:
    """Any store, with every file encrypted under the personal-data key (MINYI_PII_KEY) before
    it leaves the process: a copied directory or a leaked bucket shows no photo. `minyi keys
    rotate` re-seals them (`reseal`)."""

    def __init__(self, inner: FileStore, cipher: PiiCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        sealed = self.cipher.encrypt_bytes(data, _field(check_key(key)))
        await self.inner.put(key, sealed, content_type)

    async def get(self, key: str) -> StoredFile | None:
        found = await self.inner.get(key)
        if found is None:
            return None
        return StoredFile(self.cipher.decrypt_bytes(found.data, _field(key)), found.content_type)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def reseal(self, key: str) -> bool:
        """Encrypt the file again under the current key, if it is not already; True if it was."""
        found = await self.inner.get(key)
        if found is None or self.cipher.sealed_by_current(found.data, _field(key)):
            return False
        await self.put(key, self.cipher.decrypt_bytes(found.data, _field(key)), found.content_type)
        return True


def _field(key: str) -> str:
    return f"file:{key}"
