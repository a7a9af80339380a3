"""Rigs for the channel tests.

SMS: per provider, the whole app with the SMS channel, the provider's fake API behind
MINYI_SMS_API_BASE, and a recorder in place of the survey handler and the notifier.
WeChat: a fake WeChat API on loopback and the app wired to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app.settings import Settings
from bot.app.web import create_app
from channels.base import DeliveryReport, Recipient, Route, Services
from channels.sms import SmsChannel, SmsReply, build_sms_channel
from conversation.messages import Reply
from tests.conftest import sqlite_settings

from .sms_fakes import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    ALIYUN_SIGN,
    APPS,
    HTTP_SECRET,
    TENCENT_ID,
    TENCENT_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeProvider,
)
from .wechat_kit import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    WeChatCitizen,
    WeChatServer,
)

PAYLOADS = Path(__file__).parent / "payloads"
PATH_SECRET = "path-secret-0123456789abcdef"
PUBLIC_URL = "https://minyi.example.gov.cn"

PROVIDER_SETTINGS: dict[str, dict[str, Any]] = {
    "aliyun": {
        "sms_access_key_id": ALIYUN_KEY_ID,
        "sms_access_key_secret": ALIYUN_SECRET,
        "sms_sign_name": ALIYUN_SIGN,
        "sms_template_notice": "SMS_100001",
        "sms_template_survey": "SMS_100002",
        "sms_webhook_secret": PATH_SECRET,
    },
    "tencent": {
        "sms_access_key_id": TENCENT_ID,
        "sms_access_key_secret": TENCENT_KEY,
        "sms_sign_name": "民意热线",
        "sms_app_id": "1400006666",
        "sms_template_notice": "1000001",
        "sms_template_survey": "1000002",
        "sms_template_clarify": "1000003:refs,ref",
        "sms_webhook_secret": PATH_SECRET,
    },
    "twilio": {
        "sms_account_sid": TWILIO_SID,
        "sms_auth_token": TWILIO_TOKEN,
        "sms_from": "+14155550100",
        "public_url": PUBLIC_URL,
    },
    "http": {"sms_webhook_secret": HTTP_SECRET},
}


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes().strip()


def sms_settings(tmp_path: Path, provider: str, api_base: str, **extra: Any) -> Settings:
    values = {"sms_provider": provider, "sms_api_base": api_base, **PROVIDER_SETTINGS[provider]}
    return sqlite_settings(tmp_path, **{**values, **extra})


@dataclass
class Recorder:
    """Stands in for the survey handler (replies) and the notifier (delivery reports)."""

    replies: list[SmsReply] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    failing: bool = False

    async def take(self, replies: Sequence[SmsReply]) -> None:
        """A push's replies, kept all at once (as the SMS inbox does) or not at all."""
        if self.failing:
            raise RuntimeError("the database is down")
        self.replies.extend(replies)

    async def report(self, report: DeliveryReport) -> None:
        if self.failing:
            raise RuntimeError("the database is down")
        self.reports.append(report)


class ReportsRecorded:
    """The SMS channel, its delivery reports going to the recorder instead of the notifier."""

    def __init__(self, channel: SmsChannel, recorder: Recorder) -> None:
        self.channel, self.recorder = channel, recorder
        self.name, self.title = channel.name, channel.title

    def routes(self) -> Sequence[web.RouteDef]:
        return self.channel.routes()

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        return self.channel.reach(recipient)

    async def start(self, services: Services) -> None:
        await self.channel.start(replace(services, delivery_report=self.recorder.report))

    async def send(self, recipient: str, replies: Sequence[Reply]) -> None:
        await self.channel.send(recipient, replies)

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Rig:
    client: TestClient
    fake: FakeProvider
    channel: SmsChannel
    recorder: Recorder
    settings: Settings

    async def rejections(self, reason: str) -> float:
        text = await (await self.client.get("/metrics")).text()
        line = f'minyi_webhook_rejected_total{{channel="sms",reason="{reason}"}} '
        found = [row for row in text.splitlines() if row.startswith(line)]
        return float(found[0].removeprefix(line)) if found else 0.0


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def make_rig(aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path) -> MakeRig:
    async def make(provider: str, **extra: Any) -> Rig:
        fake = FakeProvider()
        server = await aiohttp_server(APPS[provider](fake))
        settings = sms_settings(tmp_path, provider, str(server.make_url("")).rstrip("/"), **extra)
        recorder = Recorder()
        channel = build_sms_channel(settings.channel("sms"), recorder.take)
        channels: dict[str, Any] = {"sms": ReportsRecorded(channel, recorder)}
        client = await aiohttp_client(create_app(settings, workers=False, channels=channels))
        return Rig(client, fake, channel, recorder, settings)

    return make


# -- WeChat ---------------------------------------------------------------------------------------


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
    return WeChatCitizen(client, WeChatServer("safe", api=fake_wechat))
