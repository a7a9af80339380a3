"""Long polling (getUpdates) for trying the bot where Telegram cannot reach us, e.g. a laptop.

Each update goes through the same `process` as the webhook's; the offset moves past an update
only once it is handled, so an update that failed is fetched and tried again (the engine and the
channel make a repeat harmless, exactly as with a webhook re-delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from telegram import Bot, Update
from telegram.error import Conflict, Forbidden, InvalidToken, TelegramError

from .request import FloodWait, redact
from .updates import ALLOWED_UPDATES

log = logging.getLogger(__name__)

POLL_SECONDS = 25  # how long Telegram holds a getUpdates open when nothing is new
ATTEMPTS = 3  # tries for one update before it is logged and skipped
MAX_PAUSE = 30.0


class PollingRefused(Exception):
    """Polling cannot work with these settings; the message tells the operator what to do."""


async def poll(
    bot: Bot,
    process: Callable[[Update], Awaitable[None]],
    stop: asyncio.Event,
    *,
    wait: int = POLL_SECONDS,
) -> int:
    """Fetch and handle updates until `stop` is set; how many were taken off the queue."""
    offset: int | None = None
    handled = 0
    failures = 0
    while not stop.is_set():
        try:
            updates = await _fetch(bot, offset, wait, stop)
        except Conflict:
            raise PollingRefused(
                "Telegram refuses getUpdates while a webhook is set: run "
                "`minyi telegram webhook --delete` first (and set it again after trying)."
            ) from None
        except (InvalidToken, Forbidden):
            raise PollingRefused("MINYI_TELEGRAM_TOKEN was refused by Telegram.") from None
        except TelegramError as exc:
            failures += 1
            pause = exc.retry_after if isinstance(exc, FloodWait) else min(2.0**failures, MAX_PAUSE)
            log.warning("getUpdates failed (%s); trying again in %gs", redact(str(exc)), pause)
            await _pause(stop, pause)
            continue
        failures = 0
        if updates is None:
            break  # stopped while waiting
        for update in updates:
            if not await _handle(update, process, stop):
                break  # stopped before this one was handled: it is fetched again next time
            handled += 1
            offset = update.update_id + 1
    if offset is not None:
        # getUpdates confirms everything below `offset`; without this call the last batch
        # would be fetched again on the next run.
        with contextlib.suppress(TelegramError):
            await bot.get_updates(offset=offset, timeout=0, limit=1)
    return handled


async def _fetch(
    bot: Bot, offset: int | None, wait: int, stop: asyncio.Event
) -> Sequence[Update] | None:
    """The next batch, or None when `stop` was set first (the open request is cancelled)."""
    fetch = asyncio.ensure_future(
        bot.get_updates(offset=offset, timeout=wait, allowed_updates=list(ALLOWED_UPDATES))
    )
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (fetch, stopped):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if fetch.cancelled():
        return None
    return fetch.result()


async def _handle(
    update: Update, process: Callable[[Update], Awaitable[None]], stop: asyncio.Event
) -> bool:
    """Handle one update, retrying a failure; False only when stopped before it was done."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await process(update)
            return True
        except Exception:
            log.exception("telegram update %d failed (attempt %d)", update.update_id, attempt)
        if attempt < ATTEMPTS and await _pause(stop, float(attempt)):
            return False
    log.error("telegram update %d skipped after %d failures", update.update_id, ATTEMPTS)
    return True


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` unless stopped first; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
