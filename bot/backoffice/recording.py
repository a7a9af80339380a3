"""Recording what was already sent, through a database that went away for a moment.

Once a message is out, the record of it must be written: a notice whose record failed stays
leased and is sent a second time when its lease ends. The soak found exactly that when
PostgreSQL restarted under a running worker (two WeChat notices twice, 120 s apart), so the
record is retried while the database comes back, for longer than a restart takes and well within
the lease (notifications.py leases for 120 s).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, IntegrityError

log = logging.getLogger(__name__)

# Seconds between tries: about 45 s in all.
PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0)


def _passing(exc: BaseException) -> bool:
    """A lost connection or a database starting up, not a refusal of what we wrote."""
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, DBAPIError | ConnectionError | OSError | TimeoutError)


async def record_surely(
    work: Callable[[], Awaitable[None]],
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    for pause in (*PAUSES, None):
        try:
            await work()
            return
        except Exception as exc:
            if pause is None or not _passing(exc):
                raise
            log.warning(
                "%s was sent but not yet recorded (%s); trying again in %.0f s",
                what,
                type(exc).__name__,
                pause,
            )
            await sleep(pause)
