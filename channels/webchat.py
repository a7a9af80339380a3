"""The web chat: a page at `/` and one JSON turn at `POST /webchat/messages` (CONTRACTS.md)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from conversation.messages import Inbound, Location, Reply

from .base import (
    Built,
    DeliveryFailed,
    Handler,
    Mailbox,
    Notice,
    Parts,
    Plugin,
    Recipient,
    Route,
    Services,
    json_error,
    json_response,
    parse_json_object,
    read_body,
)

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_TEXT = 4000
# The session id is the web citizen's only credential (status is shown to it alone), so it must
# be long and random: the page makes 32 characters from crypto.getRandomValues.
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# The longest an open page's poll is held: under the 30-60 s idle timeouts of common proxies.
MAX_WAIT = 25
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class WebChatChannel:
    name = "webchat"
    title = "网页"

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.mailbox: Mailbox | None = None
        self._page = resources.files("channels").joinpath("static/webchat.html").read_bytes()

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get("/", self.page),
            web.post("/webchat/messages", self.message),
            web.get("/webchat/messages", self.pending),
        ]

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def message(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, MAX_BODY)
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "too_large", f"The request is larger than {MAX_BODY} bytes.")
        data = parse_json_object(body)
        if data is None:
            return json_error(400, "bad_json", "The body must be a JSON object.")
        inbound = _inbound(data)
        if isinstance(inbound, str):
            return json_error(422, "invalid", inbound)
        try:
            replies = await self.handle(inbound)
        except Exception:
            log.exception("web chat turn failed")
            return json_error(503, "unavailable", "The service is busy; send the message again.")
        return json_response({"replies": [r.to_json() for r in replies]})

    async def pending(self, request: web.Request) -> web.Response:
        """Messages kept for this page (case progress, a staff member's words), oldest first.

        `wait=N` (1-25 s) holds the request until one arrives — the open page's long poll, so
        that staff words show within a moment; without it, what is kept now."""
        session = request.query.get("session", "")
        if not SESSION_RE.fullmatch(session):
            return json_error(422, "invalid", "session must be 16-64 letters, digits, '-' or '_'.")
        wait = request.query.get("wait", "0")
        if not wait.isdigit() or int(wait) > MAX_WAIT:
            return json_error(
                422, "invalid", f"wait must be a whole number of seconds, 0-{MAX_WAIT}."
            )
        if self.mailbox is None:
            return json_response({"replies": []})
        replies = await self.mailbox.wait(session, int(wait))
        return json_response({"replies": [r.to_json() for r in replies]})

    async def start(self, services: Services) -> None:
        self.mailbox = services.mailbox

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        """A web citizen: the mailbox their page reads when it is open again."""
        if recipient.channel != self.name:
            return []
        session = recipient.address

        async def keep(notice: Notice) -> str | None:
            return await self.send(session, notice.replies)

        return [Route("mailbox", self.name, conversational=True, deliver=keep)]

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        """The page may be closed: keep the messages until the citizen opens it again."""
        if self.mailbox is None:
            raise DeliveryFailed("web chat has no mailbox to keep messages in")
        await self.mailbox.put(recipient, replies)
        return None

    async def close(self) -> None:
        return None


def _build(config: object, parts: Parts) -> Built:
    return Built(channel=WebChatChannel(parts.handle))


# Always on: the embedded default must be usable with no settings at all.
PLUGIN = Plugin("webchat", (), lambda values: True, _build)


def _inbound(data: dict[str, Any]) -> Inbound | str:
    """The turn as an Inbound, or a sentence saying what is wrong with the request."""
    session = data.get("session")
    if not isinstance(session, str) or not SESSION_RE.fullmatch(session):
        return "session must be 16-64 letters, digits, '-' or '_' (the page makes one for you)."
    message_id = data.get("message_id", "")
    if not isinstance(message_id, str) or (message_id and not MESSAGE_ID_RE.fullmatch(message_id)):
        return "message_id must be up to 64 letters, digits or '-_.:'."
    language = data.get("language", "")
    language = language[:16] if isinstance(language, str) else ""
    common: dict[str, Any] = {
        "channel": "webchat",
        "sender": session,
        "message_id": message_id,
        "language": language,
    }
    if data.get("event") == "start":
        return Inbound(kind="event", event="subscribe", **common)
    if "location" in data:
        location = _location(data["location"])
        if location is None:
            return 'location must be {"lat": -90..90, "lng": -180..180, "label": "…"}.'
        return Inbound(kind="location", location=location, text=location.label, **common)
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text must be a non-empty string."
    if len(text) > MAX_TEXT:
        return f"text is longer than {MAX_TEXT} characters; send it in parts."
    return Inbound(kind="text", text=text, **common)


def _location(value: Any) -> Location | None:
    if not isinstance(value, dict):
        return None
    lat, lng, label = _number(value.get("lat")), _number(value.get("lng")), value.get("label", "")
    if lat is None or lng is None or not isinstance(label, str):
        return None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return Location(lat, lng, label[:200])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
