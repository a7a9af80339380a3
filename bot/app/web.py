"""`create_app(settings)`: the channels' routes, the API, health and metrics over one `Minyi`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.api.routes import ApiParts, create_api
from bot.app.appkeys import MINYI
from bot.app.health import healthz, metrics, readyz
from bot.app.protection import protect
from bot.app.settings import Settings
from bot.app.wiring import build_minyi, running
from bot.backoffice.workers import Workers
from bot.desk import create_desk
from bot.desk.services import DeskServices
from bot.open311.app import Open311Parts, create_open311
from channels.base import Channel
from storage.models import utcnow

log = logging.getLogger(__name__)

# Large enough for an Alibaba batch of SMS replies; each channel sets its own tighter limit.
MAX_REQUEST = 1024 * 1024
# What aiohttp itself can limit on a connection: no real client sends 40 headers or a 4 KiB
# header (the request line keeps aiohttp's 8 KiB, for Open311's long id lists), and a closed connection stops reading a client's rest after 5 s. aiohttp has no
# timeout for reading headers or a body: a reverse proxy in front sets those (README, "Reverse
# proxy"); `minyi serve` also closes idle keep-alive connections after 15 s (cli.py).
CONNECTION_LIMITS = {
    "max_line_size": 8190,
    "max_field_size": 4096,
    "max_headers": 40,
    "lingering_time": 5.0,
}
KEEPALIVE_SECONDS = 15.0


def create_app(
    settings: Settings, *, workers: bool = True, channels: dict[str, Channel] | None = None
) -> web.Application:
    """The whole web service; `workers=False` leaves background jobs to `minyi worker`.

    `channels` replaces the channels built from settings, for tests and benchmarks that give a
    channel their own handler.
    """
    minyi = build_minyi(settings, replace_channels=channels)
    app = web.Application(client_max_size=MAX_REQUEST, handler_args=CONNECTION_LIMITS)
    app[MINYI] = minyi
    protect(
        app,
        clients=minyi.clients,
        limits=minyi.limits,
        rate=settings.rate_address,
        catalog=minyi.office.catalog,
    )

    async def run(app: web.Application) -> AsyncIterator[None]:
        async with running(minyi):
            jobs = Workers(minyi.jobs, minyi.wakeups, minyi.metrics.job_failures)
            if workers:
                jobs.start()
            try:
                yield
            finally:
                await jobs.stop()

    app.cleanup_ctx.append(run)
    for channel in minyi.channels.values():
        app.router.add_routes(channel.routes())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    api = ApiParts(minyi.units, settings.api_token, minyi.office, minyi.deadlines, minyi.surveys)
    app.add_subapp("/api/v1", create_api(api))
    desk = DeskServices(
        minyi.units,
        minyi.office,
        minyi.deadlines,
        minyi.surveys,
        https=(settings.public_url or "").startswith("https:"),
        staff_actions=minyi.staff_threads.act,
        live=minyi.live,
        shared=minyi.shared,
        files=minyi.files,
    )
    app.add_subapp("/desk", create_desk(desk))
    open311 = Open311Parts(
        minyi.units,
        minyi.office,
        minyi.deadlines,
        settings.open311_keys,
        settings.public_url,
        started=utcnow(),
    )
    app.add_subapp("/open311/v2", create_open311(open311))
    return app
