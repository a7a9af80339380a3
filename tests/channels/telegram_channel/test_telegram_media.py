"""Telegram photos fetched into Minyi's file store (getFile, then the file) and kept with the
case, cleaned like every photo; a file_id Telegram refuses is given up."""

from __future__ import annotations

import io

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.backoffice.media_fetch import MAX_TRIES
from storage.models import Attachment
from tests.photo_samples import jpeg_with_gps

from .fake_telegram import FakeBotApi, TelegramUser
from .test_telegram_webhook import post


@pytest.fixture
def user() -> TelegramUser:
    return TelegramUser()


FILE_ID = "AgACAgUAAxkBAAIBb2dAlarge1280"  # the largest size in payloads/telegram/photo.json


async def file_with_a_photo(client: TestClient, user: TelegramUser) -> list[Attachment]:
    for text in ("1", "1", "小区电梯坏了两个星期，老人上下楼很困难，物业一直不修。"):
        await post(client, user.text(text))
    await post(client, user.update("location"))
    await post(client, user.update("photo"))
    for text in ("完成", "张三", "13800138000", "1"):
        await post(client, user.text(text))
    [job] = [j for j in client.app[MINYI].jobs if j.name == "media-fetch"]
    await job.run()
    async with client.app[MINYI].db.session() as session:
        return list(await session.scalars(select(Attachment)))


async def test_a_telegram_photo_is_fetched_and_kept_clean(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    fake_api.files[FILE_ID] = jpeg_with_gps()
    [photo] = await file_with_a_photo(client, user)
    assert photo.ref == FILE_ID and photo.file_key
    stored = await client.app[MINYI].files.get(photo.file_key)
    assert stored is not None and not Image.open(io.BytesIO(stored.data)).getexif()
    assert [c.params["file_id"] for c in fake_api.called("getFile")] == [FILE_ID]


async def test_a_file_id_telegram_refuses_is_given_up(
    client: TestClient, fake_api: FakeBotApi, user: TelegramUser
) -> None:
    [photo] = await file_with_a_photo(client, user)
    assert (photo.file_key, photo.fetch_tries) == (None, MAX_TRIES)
