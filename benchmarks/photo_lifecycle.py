"""What photos cost the backup, the restore and the orphan sweep (docs/photos.md).

    python benchmarks/photo_lifecycle.py [--cases 40] [--photos 3] [--orphans 200]

A throwaway SQLite office with the local file store: `--cases` cases filed through the
conversation, each given `--photos` phone-sized photos (one 12-megapixel picture cleaned once:
2560 px as kept, sealed anew for each), and `--orphans` abandoned uploads whose
conversations have ended. Measured in the same run: the backup without photos (the database
alone, as before) and with them, the restore of each, and one sweep run per batch of orphans.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from bot.backoffice.photo_sweep import PhotoSweep
from conversation.messages import Inbound
from storage.backup import Photos, backup, restore
from storage.db import Database
from storage.files import LocalFileStore
from storage.models import Attachment, Case, utcnow
from storage.photos import clean, thumbnail_key
from storage.uploads import record

PII_KEY = base64.urlsafe_b64encode(b"p" * 32).decode()
FILING = ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过", "跳过")


def phone_photo() -> tuple[bytes, bytes]:
    # Noise at a quarter of the size, scaled up: as busy as a street photo, about 3-4 MB.
    small = Image.frombytes("RGB", (1000, 750), os.urandom(1000 * 750 * 3))
    noise = small.resize((4000, 3000), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=90)
    photo = clean(out.getvalue())
    return photo.full, photo.thumb


async def say(minyi: object, sender: str, text: str) -> None:
    inbound = Inbound(channel="webchat", sender=sender, text=text, message_id=secrets.token_hex(8))
    await minyi.handle(inbound)  # type: ignore[attr-defined]


async def main(cases: int, per_case: int, orphans: int) -> None:
    full, thumb = phone_photo()
    print(f"photo as kept: {len(full):,} bytes, thumbnail {len(thumb):,}")
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "office").mkdir()
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{root}/office/minyi.db",
            pii_key=PII_KEY,
            files_dir=f"{root}/office/files",
        )
        async with open_minyi(settings) as minyi:
            for number in range(cases):
                sender = f"bench-{number}"
                for text in (*FILING, "张三", "13800138000", "1"):
                    await say(minyi, sender, text)
            async with minyi.units() as uow:
                ids = list(
                    await uow.session.scalars(Case.__table__.select().with_only_columns(Case.id))
                )
                for case_id in ids:
                    for _ in range(per_case):
                        key = f"photos/{secrets.token_urlsafe(18)}.jpg"
                        await minyi.files.put(thumbnail_key(key), thumb, "image/jpeg")
                        await minyi.files.put(key, full, "image/jpeg")
                        uow.session.add(
                            Attachment(
                                case_id=case_id,
                                kind="image",
                                channel="webchat",
                                ref=key,
                                file_key=key,
                            )
                        )
                await uow.commit()
            cipher = minyi.cipher
        db = Database(settings.database_url)
        store = LocalFileStore(root / "office" / "files")
        timings = {}
        for label, photos in (("database only", None), ("with photos", Photos(store, copy=True))):
            target = root / f"{label}.backup"
            start = time.perf_counter()
            await backup(db, cipher, target, photos)
            timings[label] = (time.perf_counter() - start, target.stat().st_size)
        await db.dispose()
        for label, (seconds, size) in timings.items():
            print(f"backup, {label}: {seconds:.2f} s, {size / 1e6:.1f} MB")
        for label in timings:
            (root / label).mkdir()
            fresh = Database(f"sqlite+aiosqlite:///{root}/{label}/minyi.db")
            files = LocalFileStore(root / label / "files")
            start = time.perf_counter()
            await restore(fresh, cipher, root / f"{label}.backup", replace=False, files=files)
            print(f"restore, {label}: {time.perf_counter() - start:.2f} s")
            await fresh.dispose()

        # Abandoned uploads of conversations that have ended (none was ever opened): swept.
        async with open_minyi(settings) as minyi:
            async with minyi.units() as uow:
                for number in range(orphans):
                    key = f"photos/{secrets.token_urlsafe(18)}.jpg"
                    await record(uow.session, key, f"webchat:gone-{number}", utcnow())
                    await minyi.files.put(thumbnail_key(key), thumb, "image/jpeg")
                    await minyi.files.put(key, full, "image/jpeg")
                await uow.commit()
            sweep = PhotoSweep(
                minyi.units,
                minyi.files,
                minyi.store,
                age=timedelta(hours=48),
                lifetime=timedelta(hours=24),
                clock=lambda: utcnow() + timedelta(hours=49),
            )
            start, swept = time.perf_counter(), 0
            while done := await sweep.run_once():
                swept += done
            seconds = time.perf_counter() - start
            print(
                f"sweep: {swept} orphans in {seconds:.2f} s ({seconds / swept * 1000:.1f} ms each)"
            )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--orphans", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(main(options.cases, options.photos, options.orphans))
