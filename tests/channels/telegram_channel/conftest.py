"""A local fake Bot API and the whole app wired to it, on every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from channels.telegram import TelegramChannel

from .fake_telegram import SECRET, TOKEN, FakeBotApi


@dataclass
class VirtualTime:
    """A clock that moves only when someone sleeps: waits are recorded, never really taken."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def fake_api(aiohttp_server: Any, virtual_time: VirtualTime) -> FakeBotApi:
    """The Bot API, counting its flood limits on the same clock as the app's sender."""
    fake = FakeBotApi(clock=virtual_time.clock)
    server: TestServer = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def telegram_settings(settings: Settings, fake_api: FakeBotApi) -> Settings:
    return settings.replace(
        telegram_token=TOKEN, telegram_secret=SECRET, telegram_api_base=fake_api.base
    )


def telegram_of(client: TestClient) -> TelegramChannel:
    channel = client.app[MINYI].channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    return channel


async def app_client(aiohttp_client: Any, settings: Settings, time: VirtualTime) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(settings, workers=False))
    sender = telegram_of(client).sender
    assert sender is not None
    sender.clock, sender.sleep = time.clock, time.sleep
    return client


@pytest.fixture
def virtual_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def client(
    aiohttp_client: Any, telegram_settings: Settings, virtual_time: VirtualTime
) -> TestClient:
    return await app_client(aiohttp_client, telegram_settings, virtual_time)
