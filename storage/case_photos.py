"""A case's photos as files to hand over (an archive, a citizen's export): each opened from the
file store with the key, named by its attachment, with its SHA-256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .files import FileStore
from .models import Case
from .uow import UnitOfWork


@dataclass(frozen=True)
class CasePhoto:
    attachment: int
    key: str
    data: bytes | None  # None: the store does not have it (lost, or never fetched whole)

    def entry(self, file: str) -> dict[str, object]:
        """The photo as a listing names it: `file` where its bytes are written."""
        if self.data is None:
            return {"attachment": self.attachment, "file": None, "missing": True}
        return {
            "attachment": self.attachment,
            "file": file,
            "bytes": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }


async def case_photos(uow: UnitOfWork, case: Case, files: FileStore) -> list[CasePhoto]:
    """The photos Minyi keeps for the case, in the order they came (a WeChat photo not yet
    fetched has no file and is not one)."""
    photos = []
    for attachment in await uow.cases.attachments(case):
        if not attachment.file_key:
            continue
        found = await files.get(attachment.file_key)
        photos.append(
            CasePhoto(attachment.id, attachment.file_key, None if found is None else found.data)
        )
    return photos
