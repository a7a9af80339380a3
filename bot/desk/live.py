"""`GET /desk/live`: Server-Sent Events that tell an open desk page which conversations changed.

The stream carries only "thread N changed" (or "reload"), and only for threads the signed-in
person may see; the page then fetches the current state of that part. Authenticated by the
desk's session cookie like every desk request, pinged every 15 s so proxies keep it open, and
closed when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from bot.desk.guard import HEADERS
from bot.desk.inbox import visible_thread
from bot.desk.keys import STAFF
from bot.desk.policy import Staff, scope
from bot.desk.services import DeskServices, desk_services
from storage.live import Listener

PING = 15.0
STREAMS = web.AppKey("desk_streams", set[EventSourceResponse])
# How long a scope's "may see thread N" is trusted. A case re-routed within that moment only
# sends or withholds a "changed" note; what the page then fetches is checked in full.
REMEMBER = 2.0
REMEMBERED_MAX = 10_000


class Visibility:
    """Which conversations each scope may see, asked once per thread and scope, not once per
    open page: fifty desks open would otherwise run fifty queries for each citizen's message
    (`benchmarks/desk_live.py`). Concurrent askers of one answer share its query."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, int], tuple[float, asyncio.Future[bool]]] = {}

    async def __call__(self, services: DeskServices, staff: Staff, thread_id: int) -> bool:
        key = scope(staff)
        if key is None:
            return True  # sees every case, and a note names only a thread that exists
        now = time.monotonic()
        held = self.known.get((key, thread_id))
        if held is not None and now - held[0] < REMEMBER:
            return await asyncio.shield(held[1])
        if len(self.known) >= REMEMBERED_MAX:
            self.known.clear()
        answer = asyncio.ensure_future(self._ask(services, staff, thread_id))
        self.known[(key, thread_id)] = (now, answer)
        try:
            return await asyncio.shield(answer)
        except Exception:
            self.known.pop((key, thread_id), None)  # not remembered: the next note asks again
            raise

    @staticmethod
    async def _ask(services: DeskServices, staff: Staff, thread_id: int) -> bool:
        async with services.uow() as uow:
            return await visible_thread(uow, staff, thread_id) is not None


VISIBILITY = web.AppKey("desk_visibility", Visibility)


async def live(request: web.Request) -> web.StreamResponse:
    services, staff = desk_services(request), request[STAFF]
    headers = {**HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    streams = request.app[STREAMS]
    async with (
        services.live.listen("desk") as listener,
        sse_response(request, headers=headers, ping_interval=PING) as stream,
    ):
        streams.add(stream)
        visible = request.app[VISIBILITY]
        forward = asyncio.create_task(_forward(listener, stream, services, staff, visible))
        try:
            await stream.wait()  # until the page goes away or the server stops
        finally:
            streams.discard(stream)
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await forward
    return stream


async def _forward(
    listener: Listener,
    stream: EventSourceResponse,
    services: DeskServices,
    staff: Staff,
    visible: Visibility,
) -> None:
    while True:
        notes = await listener.next()
        for note in notes:
            if note == "*":
                await stream.send("*", event="reload")
                continue
            thread_id = int(note.removeprefix("thread:"))
            if await visible(services, staff, thread_id):
                await stream.send(str(thread_id), event="thread")


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every open stream, so the server need not wait for the pages."""
    streams: set[EventSourceResponse] = app[STREAMS]
    for stream in list(streams):
        stream.stop_streaming()
