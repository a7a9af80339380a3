"""Retention (信访档案, PIPL): a closed case past its period is archived to a file with its
timeline and the chain's last hash, then its personal data is erased and the erasure is the
timeline's last event; younger and open cases are untouched."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.app import archive_cli
from bot.app.settings import Settings, SettingsError, load_settings
from bot.app.wiring import open_minyi
from conversation.cases.progress import Progress
from storage.citizen_export import held_about
from storage.files import FileStore, StoredFile
from storage.lifecycle import record_progress
from storage.models import (
    Attachment,
    Case,
    OutboxEntry,
    StaffThread,
    StaffThreadMessage,
    Upload,
    utcnow,
)
from storage.people import SMS_ROUTE, sms_conversation_id
from storage.photos import thumbnail_key
from storage.retention import Retention, archive_and_erase
from storage.staff_threads import add_message
from tests.s3_kit import make_bucket, s3_endpoint  # noqa: F401 (a fixture)
from tests.test_photo_sweep import at_photo_step, finish, sweep, upload, with_store

from .conftest import Citizen
from .test_citizen_export import file_as

CLOSE = ({"type": "accepted"}, {"type": "assigned", "department": "城管局"},
         {"type": "replied", "note": "已修复"}, {"type": "closed"})  # fmt: skip


async def archive(settings: Settings, folder: Path, dry_run: bool = False) -> int:
    args = argparse.Namespace(command="archive", to=folder, dry_run=dry_run)
    return await asyncio.to_thread(archive_cli.run, settings, args)


async def test_a_case_past_its_retention_is_archived_then_erased(
    database_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = database_settings.replace(retention_years=(("petition", 2),))
    async with open_minyi(settings) as minyi:
        old = await file_as(
            Citizen(minyi, sender="web-old"),
            "13700001111",
            "小区门口的路灯坏了一个多月了，晚上很黑。",
        )
        recent = await file_as(
            Citizen(minyi, sender="web-new"), "13800138000", "楼下的下水道堵了三天，污水漫到路面。"
        )
        still_open = await file_as(
            Citizen(minyi, sender="web-open"), "13900001111", "邻居装修噪音从早到晚不停，影响休息。"
        )
        async with minyi.units() as uow:
            for code in (old, recent):
                case = await uow.cases.by_code(code, for_update=True)
                assert case is not None
                for body in CLOSE:
                    await record_progress(
                        uow, case, Progress.from_json(body), minyi.deadlines, utcnow()
                    )
            case = await uow.cases.by_code(old)
            assert case is not None
            thread = StaffThread(case_id=case.id, channel="webchat", external_id="web-old")
            uow.session.add(thread)
            await uow.session.flush()
            await add_message(uow, thread.id, "citizen", "路灯在东门第三根")
            # The person also texted about it: their SMS conversation keeps the mobile, sealed.
            texted = await uow.people.identity(
                "sms", sms_conversation_id(uow.cipher, "+8613700001111")
            )
            texted.phone_enc = uow.cipher.encrypt("+8613700001111", SMS_ROUTE)
            uow.session.add(
                StaffThread(case_id=case.id, channel="sms", external_id=texted.external_id)
            )
            # Closed three years ago; the open one was filed as long ago.
            long_ago = utcnow() - timedelta(days=3 * 365)
            await uow.session.execute(
                update(Case).where(Case.code == old).values(closed_at=long_ago)
            )
            await uow.session.execute(
                update(Case).where(Case.code == still_open).values(created_at=long_ago)
            )
            await uow.commit()

    folder = tmp_path / "archive"
    assert await archive(settings, folder, dry_run=True) == 0
    assert capsys.readouterr().out.split() == [old]
    assert not folder.exists()

    assert await archive(settings, folder) == 0
    assert f"{old}: archived to" in capsys.readouterr().out
    file = folder / f"{old}.json"
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    body = file.read_bytes()
    kept = json.loads(body)
    assert kept["case"]["contact"] == {"name": "张三", "phone": "+8613700001111"}
    assert kept["case"]["events"][0]["type"] == "submitted"
    assert kept["conversations_with_staff"][0]["text"] == "路灯在东门第三根"
    assert kept["retention_years"] == 2

    async with open_minyi(settings) as minyi, minyi.units() as uow:
        case = await uow.cases.by_code(old)
        assert case is not None
        assert uow.cases.contact(case) == ("", "") and case.citizen_id is None
        events = await uow.events.events(case)
        erased = events[-1]
        assert erased.type == "erased" and erased.actor == "system:retention"
        assert erased.prev_hash == kept["chain"]["last_hash"]  # the archive ends where it began
        assert erased.data["archive_sha256"] == hashlib.sha256(body).hexdigest()
        assert (await uow.events.verify(case)).ok
        words = await uow.session.scalar(
            select(func.count())
            .select_from(StaffThreadMessage)
            .join(StaffThread, StaffThread.id == StaffThreadMessage.thread_id)
            .where(StaffThread.case_id == case.id)
        )
        assert words == 0
        sealed = await uow.session.scalars(
            select(OutboxEntry.private_enc).where(OutboxEntry.case_code == old)
        )
        assert set(sealed) == {None}
        sms = await uow.people.find_identity(
            "sms", sms_conversation_id(uow.cipher, "+8613700001111")
        )
        assert sms is not None and sms.phone_enc is None
        # The person had no other case: nothing about them is held any more.
        gone = await held_about(uow, "+8613700001111")
        assert gone["person"] is None and gone["cases"] == []
        for code, phone in ((recent, "+8613800138000"), (still_open, "+8613900001111")):
            other = await uow.cases.by_code(code)
            assert other is not None and uow.cases.contact(other) == ("张三", phone)

    assert await archive(settings, folder) == 0  # done once: not due again
    assert "0 case(s) archived" in capsys.readouterr().err


def test_the_retention_setting_is_checked() -> None:
    assert load_settings({}).retention_years == ()
    parsed = load_settings({"MINYI_RETENTION_YEARS": "petition=10, suggestion=3"})
    assert parsed.retention_years == (("petition", 10), ("suggestion", 3))
    for wrong, says in (
        ("petition=ten", "write kind=years"),
        ("petition=0", "write kind=years"),
        ("complaint=5", "complaint is not a kind of case"),
    ):
        with pytest.raises(SettingsError, match=says):
            load_settings({"MINYI_RETENTION_YEARS": wrong})


class FailingDeletes:
    """The store, but deleting fails (a bucket unreachable at that moment)."""

    def __init__(self, inner: FileStore) -> None:
        self.inner = inner

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.inner.put(key, data, content_type)

    async def get(self, key: str) -> StoredFile | None:
        return await self.inner.get(key)

    async def delete(self, key: str) -> None:
        raise OSError("the store is away")


@pytest.mark.parametrize("store", ["local", "s3"])
async def test_the_photos_go_with_the_archived_case(
    request: pytest.FixtureRequest,
    database_settings: Settings,
    store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = with_store(request, database_settings, store).replace(
        retention_years=(("petition", 2),)
    )
    if settings.files_s3_bucket:
        await make_bucket(settings.files_s3_endpoint or "", settings.files_s3_bucket)
    async with open_minyi(settings) as minyi:
        codes, photos = [], []
        for sender in ("web-photo-1", "web-photo-2"):
            citizen = await at_photo_step(minyi, sender)
            photos.append([await upload(minyi, sender), await upload(minyi, sender)])
            codes.append(await finish(citizen))
        before = [await minyi.files.get(key) for key in photos[0]]
        async with minyi.units() as uow:
            for code in codes:
                case = await uow.cases.by_code(code, for_update=True)
                assert case is not None
                for body in CLOSE:
                    await record_progress(
                        uow, case, Progress.from_json(body), minyi.deadlines, utcnow()
                    )
            long_ago = utcnow() - timedelta(days=3 * 365)
            await uow.session.execute(
                update(Case).where(Case.code.in_(codes)).values(closed_at=long_ago)
            )
            await uow.commit()

    folder = tmp_path / "archive"
    assert await archive(settings, folder) == 0
    assert "2 case(s) archived" in capsys.readouterr().err
    kept = json.loads((folder / f"{codes[0]}.json").read_bytes())
    listed = kept["photos"]
    assert [p["file"] for p in listed] == [
        f"{codes[0]}.photos/{a}.jpg" for a in sorted(p["attachment"] for p in listed)
    ]
    for entry, stored in zip(listed, before, strict=True):
        assert stored is not None
        written = (folder / entry["file"]).read_bytes()
        assert written == stored.data  # the photo as staff saw it, opened with the key
        assert entry["sha256"] == hashlib.sha256(written).hexdigest()
        assert oct((folder / entry["file"]).stat().st_mode & 0o777) == "0o600"

    async with open_minyi(settings) as minyi:
        for key in [k for pair in photos for k in pair]:
            for each in (key, thumbnail_key(key)):
                assert await minyi.files.get(each) is None  # gone from the live store
        async with minyi.units() as uow:
            assert set(await uow.session.scalars(select(Attachment.file_key))) == {None}
            assert not list(await uow.session.scalars(select(Upload.file_key)))
            case = await uow.cases.by_code(codes[0])
            assert case is not None
            erased = (await uow.events.events(case))[-1]
            assert erased.data["photos"] == 2


async def test_photos_not_deleted_at_the_archive_are_swept_later(sqlite_only: Settings) -> None:
    settings = sqlite_only.replace(retention_years=(("petition", 2),))
    async with open_minyi(settings) as minyi:
        citizen = await at_photo_step(minyi, "web-photo")
        photo = await upload(minyi, "web-photo")
        code = await finish(citizen)
        async with minyi.units() as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            for body in CLOSE:
                await record_progress(
                    uow, case, Progress.from_json(body), minyi.deadlines, utcnow()
                )
            case.closed_at = utcnow() - timedelta(days=3 * 365)
            await uow.commit()
        failing = FailingDeletes(minyi.files)
        retention = Retention({"petition": 2})
        folder = Path(sqlite_only.files_dir or "").parent / "archive"
        await archive_and_erase(minyi.units, retention, folder, code, files=failing)
        assert await minyi.files.get(photo) is not None  # the store was away
        async with minyi.units() as uow:
            assert list(await uow.session.scalars(select(Upload.file_key))) == [photo]
        assert await sweep(minyi, hours_later=0).run_once() == 1
        assert await minyi.files.get(photo) is None
        assert await minyi.files.get(thumbnail_key(photo)) is None
