"""`GET /desk/live`: Server-Sent Events that tell an open desk page which conversations changed.

The stream carries only "thread N changed" (or "reload"), and only for threads the signed-in
person may see; the page then fetches the current state of that part. Authenticated by the
desk's session cookie like every desk request, pinged every 15 s so proxies keep it open, and
closed when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from bot.desk.guard import HEADERS
from bot.desk.inbox import visible_thread
from bot.desk.keys import STAFF
from bot.desk.policy import Staff
from bot.desk.services import DeskServices, desk_services
from storage.live import Listener

PING = 15.0
STREAMS = web.AppKey("desk_streams", set[EventSourceResponse])


async def live(request: web.Request) -> web.StreamResponse:
    services, staff = desk_services(request), request[STAFF]
    headers = {**HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    streams = request.app[STREAMS]
    async with (
        services.live.listen("desk") as listener,
        sse_response(request, headers=headers, ping_interval=PING) as stream,
    ):
        streams.add(stream)
        forward = asyncio.create_task(_forward(listener, stream, services, staff))
        try:
            await stream.wait()  # until the page goes away or the server stops
        finally:
            streams.discard(stream)
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await forward
    return stream


async def _forward(
    listener: Listener, stream: EventSourceResponse, services: DeskServices, staff: Staff
) -> None:
    while True:
        notes = await listener.next()
        for note in notes:
            if note == "*":
                await stream.send("*", event="reload")
                continue
            thread_id = int(note.removeprefix("thread:"))
            async with services.uow() as uow:
                visible = await visible_thread(uow, staff, thread_id) is not None
            if visible:
                await stream.send(str(thread_id), event="thread")


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every open stream, so the server need not wait for the pages."""
    streams: set[EventSourceResponse] = app[STREAMS]
    for stream in list(streams):
        stream.stop_streaming()
