"""`protect(app)`: what every request passes before any handler — rate limits per client
address on the citizen-facing routes — and what every answer carries (`nosniff`; the web chat
page sets its own CSP, frame-ancestors and Referrer-Policy, since it knows its inline code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from channels.base import json_error
from channels.client import Clients
from conversation.catalog import Catalog
from storage.ratelimit import RateLimit, retry_after

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Where citizens (not providers' servers, which authenticate and are counted per sender) call
# from their own address: the web chat and Open311. WeChat, Telegram and SMS pushes all come
# from a few provider addresses and must never be limited by address.
CITIZEN_PREFIXES = ("/webchat/", "/open311/")


def protect(
    app: web.Application,
    *,
    clients: Clients,
    limits: RateLimit,
    rate: tuple[int, int],
    catalog: Catalog,
) -> None:
    zh, en = catalog.text("zh", "rate_limited"), catalog.text("en", "rate_limited")

    @web.middleware
    async def by_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/" or request.path.startswith(CITIZEN_PREFIXES):
            address = clients.address(request)
            wait = await limits.hit(f"addr:{address}", *rate)
            if wait is not None:
                refused = json_error(429, "rate_limited", f"{zh} {en}")
                refused.headers["Retry-After"] = str(retry_after(wait))
                return refused
        return await handler(request)

    app.middlewares.append(by_address)

    async def no_sniffing(request: web.Request, response: web.StreamResponse) -> None:
        # Every answer, errors and streams included: a browser must take JSON as JSON, never
        # guess it is a page and run it.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")

    app.on_response_prepare.append(no_sniffing)
