"""Uploads no case took are swept (issue 17, part 6): after MINYI_PHOTO_ORPHAN_HOURS and once
their conversation has ended; never a case's photo, never one an open form may still file —
on SQLite, PostgreSQL and PostgreSQL with Redis, with the local directory and an S3 bucket."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.photo_sweep import PhotoSweep
from conversation.messages import Inbound, Media
from storage.models import Attachment, Upload, utcnow
from storage.photos import thumbnail_key
from tests.conftest import Citizen, settings_for
from tests.photo_samples import jpeg_with_gps
from tests.s3_kit import KEYS, make_bucket, s3_endpoint  # noqa: F401 (a fixture)
from tests.web_citizen import CASE_CODE as CASE_CODE_RE

BEFORE_PHOTOS = ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号")


def with_store(request: pytest.FixtureRequest, settings: Settings, store: str) -> Settings:
    if store == "local":
        return settings
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"sweep-{secrets.token_hex(4)}"
    return settings.replace(
        files_s3_bucket=bucket,
        files_s3_endpoint=endpoint,
        files_s3_access_key=KEYS["access_key"],
        files_s3_secret_key=KEYS["secret_key"],
        files_s3_prefix="office/",
    )


@pytest.fixture(
    params=[
        ("sqlite", "local"),
        ("sqlite", "s3"),
        ("postgres", "local"),
        ("postgres", "s3"),
        ("postgres+redis", "local"),
        ("postgres+redis", "s3"),
    ],
    ids=lambda p: "-".join(p),
)
async def office(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Minyi]:
    backend, store = request.param
    settings = with_store(request, settings_for(request, backend, tmp_path), store)
    if settings.files_s3_bucket:
        await make_bucket(settings.files_s3_endpoint or "", settings.files_s3_bucket)
    async with open_minyi(settings) as minyi:
        yield minyi


async def upload(minyi: Minyi, sender: str) -> str:
    """What the web chat does with a photo: kept (in the ledger, with its conversation), then
    handed to the conversation."""
    key = await minyi.photos.keep(jpeg_with_gps((60, 40)), f"webchat:{sender}")
    await minyi.handle(
        Inbound(
            channel="webchat",
            sender=sender,
            kind="image",
            message_id=secrets.token_hex(8),
            media=(Media("image", key, "", key),),
        )
    )
    return key


async def at_photo_step(minyi: Minyi, sender: str) -> Citizen:
    citizen = Citizen(minyi, sender=sender)
    await citizen.say("菜单")
    for text in BEFORE_PHOTOS:
        await citizen.say(text)
    return citizen


async def finish(citizen: Citizen, phone: str = "13800138000") -> str:
    await citizen.say("完成")
    await citizen.say("张三")
    await citizen.say(phone)
    found = CASE_CODE_RE.search(await citizen.say("1"))
    assert found, "the case was not filed"
    return found.group()


def sweep(minyi: Minyi, *, hours_later: float, age_hours: float = 48) -> PhotoSweep:
    """The job as wiring builds it, with a clock `hours_later` from now."""
    later = timedelta(hours=hours_later)
    return PhotoSweep(
        minyi.units,
        minyi.files,
        minyi.store,
        age=timedelta(hours=age_hours),
        lifetime=timedelta(hours=minyi.settings.session_hours),
        clock=lambda: utcnow() + later,
    )


async def kept(minyi: Minyi, key: str) -> bool:
    full, thumb = await minyi.files.get(key), await minyi.files.get(thumbnail_key(key))
    assert (full is None) == (thumb is None), key  # a photo and its thumbnail go together
    return full is not None


async def ledger(minyi: Minyi) -> set[str]:
    async with minyi.units() as uow:
        return set(await uow.session.scalars(select(Upload.file_key)))


async def test_abandoned_uploads_are_swept_and_filed_ones_never(office: Minyi) -> None:
    filer = await at_photo_step(office, "filer")
    filed = await upload(office, "filer")
    code = await finish(filer)
    await at_photo_step(office, "leaver")
    abandoned = await upload(office, "leaver")  # the form is left at the photo step
    await Citizen(office, sender="chatter").say("菜单")
    stray = await upload(office, "chatter")  # sent where no step takes a photo
    fetched_twice = await office.photos.keep(jpeg_with_gps((30, 20)))  # a fetch that lost a race
    assert await ledger(office) == {filed, abandoned, stray, fetched_twice}

    # Younger than the age: nothing happens, whatever holds them.
    assert await sweep(office, hours_later=47).run_once() == 0
    assert all([await kept(office, k) for k in (filed, abandoned, stray, fetched_twice)])

    assert await sweep(office, hours_later=49).run_once() == 3
    assert await kept(office, filed)
    for gone in (abandoned, stray, fetched_twice):
        assert not await kept(office, gone)
    assert await ledger(office) == set()  # the case's photo is the case's now, not the ledger's
    async with office.units() as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        assert [a.file_key for a in await uow.cases.attachments(case)] == [filed]
    assert await sweep(office, hours_later=100).run_once() == 0
    assert await kept(office, filed)


async def test_an_open_form_keeps_its_photos_until_it_is_filed(office: Minyi) -> None:
    slow = await at_photo_step(office, "slow")
    photo = await upload(office, "slow")
    # Older than the age, but the conversation is live (its last message a moment ago): kept,
    # and looked at again one age later.
    assert await sweep(office, hours_later=0.1, age_hours=0).run_once() == 0
    assert await kept(office, photo) and await ledger(office) == {photo}
    assert await sweep(office, hours_later=0.2, age_hours=1).run_once() == 0
    code = await finish(slow)  # filed days after the upload: the photo is still there
    assert await sweep(office, hours_later=72).run_once() == 0
    assert await kept(office, photo) and await ledger(office) == set()
    async with office.units() as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        assert [a.file_key for a in await uow.cases.attachments(case)] == [photo]


@pytest.fixture(params=("sqlite", "postgres", "postgres+redis"))
async def runtime_of_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Minyi]:
    async with open_minyi(settings_for(request, request.param, tmp_path)) as minyi:
        yield minyi


async def test_a_form_filed_while_the_sweep_runs_keeps_its_photo(
    runtime_of_backend: Minyi,
) -> None:
    """The sweep decides under the conversation's lock: a turn that holds it (and files the
    photo) is waited for, and the attachment it wrote is seen."""
    minyi = runtime_of_backend
    await at_photo_step(minyi, "racer")
    photo = await upload(minyi, "racer")
    conversation = "webchat:racer"
    job = sweep(minyi, hours_later=49)
    async with minyi.store.lock(conversation):  # a turn of this conversation is under way
        running = asyncio.create_task(job.run_once())
        await asyncio.sleep(0.3)
        assert not running.done()  # waiting for the turn
        await finish_in_turn(minyi, photo)  # ... which files the photo with a case
    assert await running == 0
    assert await kept(minyi, photo)
    assert await ledger(minyi) == set()  # the case holds it now


async def finish_in_turn(minyi: Minyi, photo: str) -> str:
    """A case holding `photo`, written as a filing writes it (the turn's lock is held above)."""
    other = Citizen(minyi, sender="other")
    reply = await other.file_a_matter()
    found = CASE_CODE_RE.search(reply)
    assert found
    async with minyi.units() as uow:
        case = await uow.cases.by_code(found.group())
        assert case is not None
        uow.session.add(
            Attachment(case_id=case.id, kind="image", channel="webchat", ref=photo, file_key=photo)
        )
        await uow.commit()
    return found.group()


async def test_a_turn_of_another_process_is_waited_for_on_postgresql(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL without Redis, several processes: the lock a turn holds is the database's
    advisory lock, taken when it loads the state. A sweep in another process (here: past the
    in-process lock) waits on it, then sees the attachment that turn committed."""
    async with open_minyi(settings_for(request, "postgres", tmp_path)) as minyi:
        await at_photo_step(minyi, "racer")
        photo = await upload(minyi, "racer")
        other = Citizen(minyi, sender="other")
        found = CASE_CODE_RE.search(await other.file_a_matter())
        assert found
        job = sweep(minyi, hours_later=49)
        async with minyi.store.turn() as turn:  # the other process's turn
            await turn.load_state("webchat:racer")  # takes the advisory lock
            running = asyncio.create_task(job.run_once())
            await asyncio.sleep(0.5)
            assert not running.done()  # the sweep waits for the turn's transaction
            session = (await turn.uow()).session  # type: ignore[attr-defined]
            case = await (await turn.uow()).cases.by_code(found.group())  # type: ignore[attr-defined]
            assert case is not None
            session.add(
                Attachment(
                    case_id=case.id, kind="image", channel="webchat", ref=photo, file_key=photo
                )
            )
            await turn.commit()
        assert await running == 0
        assert await kept(minyi, photo)
