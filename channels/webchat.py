"""The web chat: a page at `/` and one JSON turn at `POST /webchat/messages` (CONTRACTS.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from conversation.messages import (
    Inbound,
    InvalidText,
    Location,
    Media,
    Reply,
    UnusablePhoto,
    clean_json,
)

from .base import (
    Built,
    DeliveryFailed,
    Handler,
    Mailbox,
    Notice,
    Parts,
    PhotoKeeper,
    Plugin,
    Recipient,
    Route,
    Services,
    SharedCache,
    Throttled,
    json_error,
    json_response,
    parse_json_object,
    read_body,
)
from .client import Clients

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_TEXT = 4000
# The citizen's only credential on the web chat (their status is shown to it alone). The server
# makes it (random, 256 bits) and the browser keeps it where scripts cannot read it; Minyi
# stores, logs and keys only its keyed hash, so neither a database dump nor a log line lets
# anyone read or drain another chat.
COOKIE = "minyi_chat"
COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
COOKIE_DAYS = 180
# The longest an open page's poll is held: under the 30-60 s idle timeouts of common proxies.
MAX_WAIT = 25
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Photos: what phones make, up to a phone photo's size; the case keeps at most 9 (the filing
# flow's limit), and a chat may upload twice that in a day (re-sends, a 补充) and no more, so
# that nobody can fill the disk through one chat.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
MAX_PHOTO = 10 * 1024 * 1024
PHOTOS_PER_DAY = 18


def _process_pseudonym() -> Callable[[str, str], str]:
    """For a channel built without the office's key (tests): a key of this process alone."""
    key = secrets.token_bytes(32)
    return lambda value, purpose: hmac.new(
        key, f"{purpose}\x00{value}".encode(), hashlib.sha256
    ).hexdigest()


class WebChatChannel:
    name = "webchat"
    title = "网页"

    def __init__(self, handle: Handler, pseudonym: Callable[[str, str], str] | None = None) -> None:
        self.handle = handle
        self.pseudonym = pseudonym or _process_pseudonym()
        self.mailbox: Mailbox | None = None
        self.clients = Clients()
        self.photos: PhotoKeeper | None = None
        self.shared: SharedCache | None = None
        self._page = resources.files("channels").joinpath("static/webchat.html").read_bytes()
        self._page_headers = page_headers(self._page)

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get("/", self.page),
            web.post("/webchat/messages", self.message),
            web.get("/webchat/messages", self.pending),
            web.post("/webchat/photos", self.photo),
        ]

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache", **self._page_headers},
        )

    def _chat(self, request: web.Request) -> tuple[str, str | None]:
        """The chat's sender (the cookie's keyed hash) and a new cookie to set, if one is made."""
        given = request.cookies.get(COOKIE, "")
        if COOKIE_RE.fullmatch(given):
            return self.pseudonym(given, "webchat-session"), None
        fresh = secrets.token_urlsafe(32)
        return self.pseudonym(fresh, "webchat-session"), fresh

    def _answer(
        self, request: web.Request, response: web.Response, fresh: str | None
    ) -> web.Response:
        if fresh is not None:
            response.set_cookie(
                COOKIE,
                fresh,
                max_age=COOKIE_DAYS * 86400,
                path="/",
                httponly=True,
                samesite="Lax",
                secure=self.clients.scheme(request) == "https",
            )
        return response

    async def message(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, MAX_BODY)
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, "too_large", f"The request is larger than {MAX_BODY} bytes.")
        data = parse_json_object(body)
        if data is None:
            return json_error(400, "bad_json", "The body must be a JSON object.")
        try:
            data = clean_json(data)
        except InvalidText as exc:
            return json_error(422, "invalid_text", str(exc))
        sender, fresh = self._chat(request)
        inbound = _inbound(data, sender)
        if isinstance(inbound, str):
            return self._answer(request, json_error(422, "invalid", inbound), fresh)
        return await self._turn(request, inbound, fresh)

    async def photo(self, request: web.Request) -> web.Response:
        """One photo as the raw body (`Content-Type: image/…`), sent from the open chat: cleaned
        and kept, then handed to the conversation like a WeChat photo."""
        sender, fresh = self._chat(request)
        if fresh is not None:
            # Only an open chat (its cookie) sends photos: they belong to its conversation.
            return json_error(403, "no_chat", "请先打开对话再发送照片。 Open the chat first.")
        if self.photos is None or self.shared is None:
            return json_error(503, "unavailable", "暂时不能接收照片，请稍后再试。")
        if request.content_type not in PHOTO_TYPES:
            return json_error(
                415, "not_a_photo", "请发送 JPG、PNG、HEIC 或 WebP 格式的照片。 Send a photo."
            )
        message_id = request.query.get("message_id", "")
        if message_id and not MESSAGE_ID_RE.fullmatch(message_id):
            return json_error(
                422, "invalid", "message_id must be up to 64 letters, digits or '-_.:'."
            )
        try:
            body = await read_body(request, MAX_PHOTO)
        except web.HTTPRequestEntityTooLarge:
            return json_error(
                413, "too_large", f"照片太大了，请发送 {MAX_PHOTO // 1024 // 1024} MB 以内的照片。"
            )
        if await self.shared.count(f"webchat:photos:{sender}", 86400) > PHOTOS_PER_DAY:
            refused = json_error(
                429, "too_many_photos", f"今天已经收到 {PHOTOS_PER_DAY} 张照片，不能再多了。"
            )
            refused.headers["Retry-After"] = "3600"
            return refused
        try:
            key = await self.photos.keep(body, f"{self.name}:{sender}")
        except UnusablePhoto as exc:
            return json_error(422, "not_a_photo", str(exc))
        inbound = Inbound(
            channel=self.name,
            sender=sender,
            kind="image",
            message_id=message_id,
            media=(Media("image", key, "", key),),
        )
        return await self._turn(request, inbound, None)

    async def _turn(
        self, request: web.Request, inbound: Inbound, fresh: str | None
    ) -> web.Response:
        try:
            replies = await self.handle(inbound)
        except Throttled as exc:
            refused = json_error(429, "rate_limited", exc.message)
            refused.headers["Retry-After"] = str(exc.retry_after)
            return self._answer(request, refused, fresh)
        except Exception:
            log.exception("web chat turn failed")
            return self._answer(
                request,
                json_error(503, "unavailable", "The service is busy; send the message again."),
                fresh,
            )
        return self._answer(
            request, json_response({"replies": [r.to_json() for r in replies]}), fresh
        )

    async def pending(self, request: web.Request) -> web.Response:
        """Messages kept for this page (case progress, a staff member's words), oldest first:
        only the cookie's own chat, so nobody can read (and so drain) another's.

        `wait=N` (1-25 s) holds the request until one arrives — the open page's long poll, so
        that staff words show within a moment; without it, what is kept now."""
        wait = request.query.get("wait", "0")
        if not wait.isdigit() or int(wait) > MAX_WAIT:
            return json_error(
                422, "invalid", f"wait must be a whole number of seconds, 0-{MAX_WAIT}."
            )
        sender, fresh = self._chat(request)
        if self.mailbox is None or fresh is not None:
            return self._answer(request, json_response({"replies": []}), fresh)
        replies = await self.mailbox.wait(sender, int(wait))
        return json_response({"replies": [r.to_json() for r in replies]})

    async def start(self, services: Services) -> None:
        self.mailbox = services.mailbox
        self.clients = services.clients
        self.photos = services.photos
        self.shared = services.shared

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


def page_headers(page: bytes) -> dict[str, str]:
    """The page's own script and style, allowed by their hashes and nothing else: an injected
    script cannot run, the page cannot be framed (clickjacking), and no other site learns the
    address it was opened from."""

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>".encode(), page, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
            for body in found
        )

    none = "'none'"
    policy = (
        f"default-src 'self'; script-src {hashes('script') or none}; "
        f"style-src {hashes('style') or none}; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    }


def _build(config: object, parts: Parts) -> Built:
    return Built(channel=WebChatChannel(parts.handle, parts.pseudonym))


# Always on: the embedded default must be usable with no settings at all.
PLUGIN = Plugin("webchat", (), lambda values: True, _build)


def _inbound(data: dict[str, Any], sender: str) -> Inbound | str:
    """The turn as an Inbound, or a sentence saying what is wrong with the request. A `session`
    in the body (the page's id before the server issued cookies) is ignored."""
    message_id = data.get("message_id", "")
    if not isinstance(message_id, str) or (message_id and not MESSAGE_ID_RE.fullmatch(message_id)):
        return "message_id must be up to 64 letters, digits or '-_.:'."
    language = data.get("language", "")
    language = language[:16] if isinstance(language, str) else ""
    common: dict[str, Any] = {
        "channel": "webchat",
        "sender": sender,
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
