"""Photos on the web chat (issue 17, part 6): uploaded from the open chat, cleaned (no EXIF, no
GPS), kept with the case (at most 9), shown on the desk to those who may see the case only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import func, select

from channels.webchat import PHOTOS_PER_DAY
from conversation.cases.progress import Progress
from storage.lifecycle import record_progress
from storage.models import Attachment, utcnow
from storage.photos import thumbnail_key
from tests.desk.conftest import ASSIGN_PARKS, runtime_of, signed_in, uow_of
from tests.desk.test_inbox import act, drain, thread_id
from tests.photo_samples import encoded, jpeg_with_gps
from tests.web_citizen import CASE_CODE, WebCitizen

BEFORE_PHOTOS = ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号")


async def upload(
    citizen: WebCitizen, data: bytes, content_type: str = "image/jpeg", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    citizen.client.session.cookie_jar.clear()
    response = await citizen.client.post(
        "/webchat/photos",
        data=io.BytesIO(data),
        headers={"Content-Type": content_type},
        cookies=citizen.cookies,
        **kwargs,
    )
    return response.status, await response.json()


async def file_with_photos(citizen: WebCitizen, photos: list[bytes]) -> str:
    for text in BEFORE_PHOTOS:
        await citizen.say(text)
    for photo in photos:
        status, answer = await upload(citizen, photo)
        assert status == 200, answer
    if len(photos) < 9:
        await citizen.say("完成")
    for text in ("张三", "13800138000"):
        await citizen.say(text)
    found = CASE_CODE.search(await citizen.say("1"))
    assert found
    return found.group()


async def assign(client: TestClient, code: str, steps: tuple[dict[str, Any], ...]) -> None:
    """Steps as the back office records them (the desk's accounts name departments by name)."""
    runtime = runtime_of(client)
    async with uow_of(client) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        for body in steps:
            await record_progress(uow, case, Progress.from_json(body), runtime.deadlines, utcnow())
        await uow.commit()


def stored_files(directory: str | None) -> list[Path]:
    assert directory is not None
    return list(Path(directory).rglob("*.jpg"))


async def kept_photos(client: TestClient, code: str) -> list[Attachment]:
    async with uow_of(client) as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        found = await uow.cases.attachments(case)
        uow.session.expunge_all()  # read after the unit of work ends
        return found


async def test_a_photo_is_kept_clean_and_shown_on_the_desk(desk: TestClient) -> None:
    citizen = WebCitizen(desk)
    await citizen.say("菜单")
    code = await file_with_photos(citizen, [jpeg_with_gps(), encoded("PNG", (300, 200), "RGBA")])
    kept = await kept_photos(desk, code)
    assert [(a.kind, a.channel) for a in kept] == [("image", "webchat")] * 2
    assert all(a.file_key and a.ref == a.file_key for a in kept)
    stored = await runtime_of(desk).files.get(kept[0].file_key or "")
    assert stored is not None and stored.content_type == "image/jpeg"
    assert not Image.open(io.BytesIO(stored.data)).getexif()  # no GPS, no phone model
    await assign(desk, code, ASSIGN_PARKS)

    await signed_in(desk, "parks")
    page = await (await desk.get(f"/desk/cases/{code}")).text()
    photo_url = f"/desk/cases/{code}/photos/{kept[0].id}"
    assert f'src="{photo_url}?size=thumb"' in page
    full = await desk.get(photo_url)
    assert full.status == 200 and full.content_type == "image/jpeg"
    assert await full.read() == stored.data
    assert full.headers["Cache-Control"] == "no-store"  # personal data: no cache keeps it
    thumb = await desk.get(photo_url, params={"size": "thumb"})
    expected = await runtime_of(desk).files.get(thumbnail_key(kept[0].file_key or ""))
    assert expected is not None and await thumb.read() == expected.data

    # Another department's staff, a signed-out visitor, or the photo under another case's
    # code: nothing (the case's scope is the photo's scope).
    other = await WebCitizen(desk).file_a_matter()
    await signed_in(desk, "roads")
    assert (await desk.get(photo_url)).status == 404
    desk.session.cookie_jar.clear()
    await signed_in(desk, "parks")
    assert (await desk.get(f"/desk/cases/{other}/photos/{kept[0].id}")).status == 404
    assert (await desk.get(f"/desk/cases/{code}/photos/99999")).status == 404
    assert (await desk.get(f"/desk/cases/{code}/photos/..%2F..%2Fminyi.db")).status == 404
    desk.session.cookie_jar.clear()
    anonymous = await desk.get(photo_url, allow_redirects=False)
    assert anonymous.status in (303, 401, 403) and anonymous.content_type != "image/jpeg"


async def test_a_case_keeps_at_most_nine_photos(desk: TestClient) -> None:
    citizen = WebCitizen(desk)
    await citizen.say("菜单")
    for text in BEFORE_PHOTOS:
        await citizen.say(text)
    answers = [await upload(citizen, jpeg_with_gps((40, 30))) for _ in range(10)]
    assert all(status == 200 for status, _ in answers)
    assert "9" in answers[8][1]["replies"][0]["text"]  # full: the form moves on by itself
    for text in ("张三", "13800138000"):
        await citizen.say(text)
    found = CASE_CODE.search(await citizen.say("1"))
    assert found
    assert len(await kept_photos(desk, found.group())) == 9


async def test_what_is_not_a_photo_gets_a_sentence_and_nothing_is_kept(desk: TestClient) -> None:
    citizen = WebCitizen(desk)
    await citizen.say("菜单")
    status, answer = await upload(citizen, b"just some words, not a photo")
    assert status == 422 and "JPG、PNG 或 WebP" in answer["message"]
    status, answer = await upload(citizen, b"hello", "text/plain")
    assert status == 415 and "照片" in answer["message"]
    status, answer = await upload(citizen, encoded("GIF"), "image/gif")
    assert status == 415
    status, answer = await upload(citizen, b"\xff\xd8" + b"0" * (10 * 1024 * 1024))
    assert status == 413 and "10 MB" in answer["message"]
    status, answer = await upload(citizen, jpeg_with_gps(), params={"message_id": "../bad id"})
    assert status == 422
    async with uow_of(desk) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert not stored_files(runtime_of(desk).settings.files_dir)


async def test_only_an_open_chat_sends_photos_and_not_without_end(desk: TestClient) -> None:
    desk.session.cookie_jar.clear()
    response = await desk.post(
        "/webchat/photos", data=jpeg_with_gps(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 403 and "Set-Cookie" not in response.headers
    forged = await desk.post(
        "/webchat/photos",
        data=jpeg_with_gps(),
        headers={"Content-Type": "image/jpeg"},
        cookies={"minyi_chat": "not-a-cookie"},
    )
    assert forged.status == 403
    citizen = WebCitizen(desk)
    await citizen.say("菜单")
    small = jpeg_with_gps((20, 20))
    statuses = [(await upload(citizen, small))[0] for _ in range(PHOTOS_PER_DAY + 1)]
    assert statuses[:PHOTOS_PER_DAY] == [200] * PHOTOS_PER_DAY
    status, answer = await upload(citizen, small)
    assert status == 429 and str(PHOTOS_PER_DAY) in answer["message"]
    # Another chat is not held back by this one.
    neighbour = WebCitizen(desk)
    await neighbour.say("菜单")
    assert (await upload(neighbour, small))[0] == 200


async def test_a_photo_sent_to_a_staff_member_is_kept_and_shown_in_the_thread(
    desk: TestClient,
) -> None:
    citizen = WebCitizen(desk)
    code = await citizen.file_a_matter()
    await citizen.say("人工")
    await drain(desk)
    await signed_in(desk, "intake")
    thread = await thread_id(desk)
    await act(desk, thread, "claim")

    status, answer = await upload(citizen, jpeg_with_gps())
    assert status == 200 and answer["replies"] == []  # to the person, not the bot
    [photo] = await kept_photos(desk, code)
    assert photo.file_key and photo.channel == "webchat"

    await signed_in(desk, "intake")
    messages = await (await desk.get(f"/desk/threads/{thread}?part=messages")).text()
    path = f"/desk/cases/{code}/photos/{photo.id}"
    assert f'href="{path}"' in messages and f'src="{path}?size=thumb"' in messages
    assert "[照片]" in messages
    assert (await desk.get(path)).content_type == "image/jpeg"
