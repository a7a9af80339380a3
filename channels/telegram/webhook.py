"""`POST /telegram`, and setting Telegram up to call it.

The secret header is compared (in constant time) before the body is even read: a request
without it is refused with 403 and leaves nothing but a log line and a metric.

The update is handled inline, before the answer: 200 means the citizen's turn is stored and the
replies are sent. If anything fails we answer 503 and Telegram delivers the update again later;
the engine recognises the update_id (same replies, no second step) and the channel remembers how
many replies already went out, so a re-delivery repeats nothing. Queueing the update in memory
and answering 200 at once would lose it when the process stops, with nobody to re-deliver it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from telegram import Bot, WebhookInfo

from ..base import json_error, parse_json_object, read_body
from .updates import ALLOWED_UPDATES, CHANNEL

log = logging.getLogger(__name__)

PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Updates are a few KB; a long message with its entities and a quoted reply stays well below.
MAX_BODY = 256 * 1024


class BadUpdate(ValueError):
    """The body is JSON but not a Telegram update; the message says what is wrong."""


class Webhook:
    """The aiohttp handler: authenticate, bound, parse, then hand the update on."""

    def __init__(
        self,
        secret: str,
        process: Callable[[dict[str, Any]], Awaitable[None]],
        rejected: Callable[[str, str], None],
    ) -> None:
        self._secret = secret.encode()
        self._process = process
        self._rejected = rejected

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(given.encode(errors="replace"), self._secret):
            reason = "missing_secret" if given is None else "wrong_secret"
            self._rejected(CHANNEL, reason)
            log.warning("telegram webhook refused (%s) from %s", reason, request.remote)
            return json_error(403, "forbidden", f"The {SECRET_HEADER} header is missing or wrong.")
        try:
            body = await read_body(request, MAX_BODY)
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "too_large", f"The update is larger than {MAX_BODY} bytes.")
        data = parse_json_object(body)
        if data is None:
            return json_error(
                400, "bad_json", "The body must be a JSON object (a Telegram update)."
            )
        try:
            await self._process(data)
        except BadUpdate as exc:
            return json_error(400, "bad_update", str(exc))
        except Exception:
            log.exception("telegram update %s failed; Telegram will send it again", _id(data))
            return json_error(
                503, "unavailable", "The update could not be handled now; send it again later."
            )
        # An empty 200: Telegram would run a Bot API method named in a JSON answer.
        return web.Response(status=200)


async def set_webhook(bot: Bot, url: str, secret: str, *, drop_pending: bool) -> WebhookInfo:
    """Point Telegram at `url` with our secret; what Telegram then reports about the webhook."""
    await bot.set_webhook(
        url,
        secret_token=secret,
        allowed_updates=list(ALLOWED_UPDATES),
        drop_pending_updates=drop_pending,
    )
    return await bot.get_webhook_info()


async def delete_webhook(bot: Bot, *, drop_pending: bool) -> WebhookInfo:
    """Stop webhook delivery (needed before polling); what Telegram then reports."""
    await bot.delete_webhook(drop_pending_updates=drop_pending)
    return await bot.get_webhook_info()


def _id(data: dict[str, Any]) -> str:
    return str(data.get("update_id", "?"))[:20]
