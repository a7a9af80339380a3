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
from storage.lifecycle import record_progress
from storage.models import Case, OutboxEntry, StaffThread, StaffThreadMessage, utcnow
from storage.staff_threads import add_message

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
