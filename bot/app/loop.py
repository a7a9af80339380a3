"""The server's event loop: uvloop when installed (the `speed` extra), asyncio's otherwise.

Under load most of a turn's time outside Minyi's own code is the event loop's: scheduling and
small socket writes to PostgreSQL, Redis and the client. uvloop does these in C.
"""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
