"""Background workers stop cleanly: a run in hand is finished, never cut in the middle.

Found by the soak (benchmarks/soak.py): restarting `minyi worker` under load cancelled the
notifier in the middle of a batch; messages it had already sent were not recorded, stayed
leased for two minutes, and were then sent a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.workers import Job, Workers
from channels.base import Recipient, Route, Services
from channels.webchat import WebChatChannel
from conversation.messages import Inbound, Reply
from storage.models import Notification

from .conftest import reach_by_send
from .test_notifications import accept, file_on


class GatedChannel:
    """A channel whose sends wait at a gate the test opens: a send caught in flight."""

    name = "wechat"
    title = "微信"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.sending = asyncio.Event()
        self.gate = asyncio.Event()

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def start(self, services: Services) -> None:
        return None

    async def close(self) -> None:
        return None

    def reach(self, recipient: Recipient) -> list[Route]:
        return reach_by_send(self, recipient)

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        self.sending.set()
        await self.gate.wait()
        self.sent.append((recipient, replies[0].text))
        return None


def runtime_with(settings: Settings, channel: GatedChannel) -> Any:
    async def handle(inbound: Inbound) -> list[Reply]:
        raise AssertionError("not used")

    return open_minyi(
        settings, replace_channels={"webchat": WebChatChannel(handle), "wechat": channel}
    )


async def jobs_of(runtime: Minyi) -> list[Notification]:
    async with runtime.db.session() as session:
        return list(await session.scalars(select(Notification)))


async def test_stopping_finishes_a_notification_in_flight_so_it_is_not_sent_again(
    shared_settings: Settings,
) -> None:
    wechat = GatedChannel()
    async with runtime_with(shared_settings, wechat) as runtime:
        code = await file_on(runtime, "wechat", "openid-stop")
        await accept(runtime, code)
        notifier = runtime.notifier
        workers = Workers((Job("notifier", 60.0, notifier.run_once),), runtime.wakeups)
        workers.start()
        async with asyncio.timeout(30):  # only keeps a broken test from hanging
            await wechat.sending.wait()  # the notice is on its way out …
            stopping = asyncio.create_task(workers.stop())  # … when the worker is told to stop
            await asyncio.sleep(0)
            wechat.gate.set()
            await stopping
        [job] = await jobs_of(runtime)
        # Sent once and recorded as sent: nothing left leased to be sent again later.
        assert len(wechat.sent) == 1 and "已受理" in wechat.sent[0][1]
        assert job.status == "sent" and job.leased_until is None
        assert workers.tasks == []


async def test_a_job_waiting_for_its_interval_stops_at_once(shared_settings: Settings) -> None:
    runs = 0
    ran = asyncio.Event()

    async def tick() -> int:
        nonlocal runs
        runs += 1
        ran.set()
        return 0

    async with runtime_with(shared_settings, GatedChannel()) as runtime:
        workers = Workers((Job("tick", 3600.0, tick),), runtime.wakeups)
        workers.start()
        async with asyncio.timeout(30):
            await ran.wait()
            await workers.stop()  # it would otherwise wait an hour for the next run
    assert runs == 1 and workers.tasks == []


async def test_a_run_that_outlasts_the_grace_is_cancelled(shared_settings: Settings) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return 0

    async with runtime_with(shared_settings, GatedChannel()) as runtime:
        workers = Workers((Job("stuck", 1.0, stuck),), runtime.wakeups)
        workers.start()
        async with asyncio.timeout(30):
            await started.wait()
            await workers.stop(grace=0.01)
    assert cancelled.is_set() and workers.tasks == []
