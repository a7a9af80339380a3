"""Fixtures for the channel tests: a fake WeChat API on loopback and the app wired to it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import Settings

from .wechat_kit import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    WeChatCitizen,
    WeChatServer,
)


@pytest.fixture
async def fake_wechat(aiohttp_server: Any) -> FakeWeChatApi:
    fake = FakeWeChatApi()
    server = await aiohttp_server(fake.app)
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


def wechat_settings(
    settings: Settings, fake: FakeWeChatApi, mode: str = "safe", **changes: Any
) -> Settings:
    """The official account in `mode` (plain, compatible, safe), its API at the fake."""
    return settings.replace(
        wechat_token=TOKEN,
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_aes_key=None if mode == "plain" else AES_KEY,
        wechat_api_base=fake.base,
        **changes,
    )


async def wechat_client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


@pytest.fixture
async def citizen_on_wechat(
    aiohttp_client: Any, settings: Settings, fake_wechat: FakeWeChatApi
) -> WeChatCitizen:
    """A citizen writing to a safe-mode account, on every backend."""
    client = await wechat_client(aiohttp_client, wechat_settings(settings, fake_wechat))
    return WeChatCitizen(client, WeChatServer("safe"))
