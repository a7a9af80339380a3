"""The composition root: `create_app(settings)` wires runtime, channels, API and health."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.api.routes import create_api
from bot.app.appkeys import RUNTIME
from bot.app.channel_setup import build_channels
from bot.app.health import healthz, metrics, readyz
from bot.app.runtime import open_runtime
from bot.app.settings import Settings
from bot.backoffice.workers import Workers
from bot.desk import create_desk
from channels.base import Channel
from conversation.messages import Inbound, Reply

log = logging.getLogger(__name__)

# Large enough for an Alibaba batch of SMS replies; each channel sets its own tighter limit.
MAX_REQUEST = 1024 * 1024


def create_app(
    settings: Settings, *, workers: bool = True, channels: dict[str, Channel] | None = None
) -> web.Application:
    """The whole web service; `workers=False` leaves background jobs to `minyi worker`.

    `channels` replaces the channels built from settings, for tests and benchmarks that give a
    channel their own handler.
    """
    app = web.Application(client_max_size=MAX_REQUEST)

    async def handle(inbound: Inbound) -> list[Reply]:
        return await app[RUNTIME].handle(inbound)

    if channels is None:
        channels = build_channels(settings, handle)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(settings, channels) as runtime:
            app[RUNTIME] = runtime
            jobs = Workers(runtime)
            if workers:
                jobs.start()
            try:
                yield
            finally:
                await jobs.stop()

    app.cleanup_ctx.append(runtime_ctx)

    for channel in channels.values():
        app.router.add_routes(channel.routes())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.add_subapp("/api/v1", create_api())
    app.add_subapp("/desk", create_desk())
    return app
