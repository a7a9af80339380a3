"""What every channel shares: the handler it is given, and careful body reading."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from conversation.messages import Inbound, Reply

Handler = Callable[[Inbound], Awaitable[list[Reply]]]


class Channel(Protocol):
    """A citizen channel: owns its routes, sends replies outside a request, closes cleanly."""

    name: str

    def routes(self) -> Sequence[web.RouteDef]: ...

    async def send(self, recipient: str, replies: Sequence[Reply]) -> None: ...

    async def close(self) -> None: ...


def json_error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "message": message}, status=status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes even when no Content-Length was sent."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with Chinese kept readable (no \\u escapes)."""
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
