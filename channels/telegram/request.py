"""PTB over the app's one aiohttp session: the Application, its transport, and 429 as FloodWait."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

# Used when PTB passes no timeout of its own; getUpdates adds its long-poll time to `read`.
READ_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0
_TOKEN_IN_URL = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


class FloodWait(TelegramError):
    """Telegram said "Too Many Requests": try again after `retry_after` seconds.

    Raised here rather than letting PTB build its `RetryAfter`: in PTB 22 that exception's
    `retry_after` is deprecated (int today, timedelta later) and warns every time it is built.
    """

    def __init__(self, retry_after: float, description: str = "") -> None:
        super().__init__(description or f"Too Many Requests: retry after {retry_after:g}")
        self.retry_after = retry_after


class AiohttpRequest(BaseRequest):
    """Bot API calls through the shared `aiohttp.ClientSession` (ARCHITECTURE.md: one per app)."""

    def __init__(self, session: aiohttp.ClientSession, read_timeout: float = READ_TIMEOUT) -> None:
        self._session = session
        self._read_timeout = read_timeout

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        return None  # the session belongs to the app, which opens it

    async def shutdown(self) -> None:
        return None  # and closes it

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        # aiohttp has no write timeout; sock_read bounds a stalled upload's answer instead.
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=_given(pool_timeout, POOL_TIMEOUT),
            sock_connect=_given(connect_timeout, CONNECT_TIMEOUT),
            sock_read=_given(read_timeout, self._read_timeout),
        )
        body: Any = None
        headers = {"User-Agent": self.USER_AGENT}
        if request_data is not None and request_data.contains_files:
            body = _multipart(request_data)
        elif request_data is not None:
            body = json.dumps(request_data.parameters).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                status, payload = response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut(f"Telegram did not answer in time ({_method(url)})") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"{type(exc).__name__}: {redact(str(exc))}") from exc
        if status >= 400:
            flood = _flood_wait(status, payload)
            if flood is not None:
                raise flood
        return status, payload


def _given(value: Any, default: float) -> float | None:
    """PTB passes DEFAULT_NONE for "your default", None for "no limit", or seconds."""
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, part in request_data.multipart_data.items():
        filename, content = part[0], part[1]
        content_type = part[2] if len(part) > 2 else "application/octet-stream"
        form.add_field(name, content, filename=filename, content_type=content_type)
    return form


def _flood_wait(status: int, payload: bytes) -> FloodWait | None:
    """Telegram's flood answer (429 with parameters.retry_after) as FloodWait, else None."""
    try:
        answer = json.loads(payload)
        retry_after = float(answer["parameters"]["retry_after"])
        description = str(answer.get("description", ""))
    except (ValueError, KeyError, TypeError):
        # A 429 without a readable retry_after: wait a little rather than hammer.
        return FloodWait(5.0) if status == 429 else None
    return FloodWait(max(0.0, retry_after), description)


def redact(text: str) -> str:
    """The text without the bot token that every Bot API URL carries."""
    return _TOKEN_IN_URL.sub("/bot<token>", text)


def _method(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def build_application(token: str, api_base: str, session: aiohttp.ClientSession) -> Application:
    """PTB's Application without an Updater: our aiohttp app receives updates (or `poll` does).

    Bot API calls go to `{api_base}/bot{token}/{method}` (tests point api_base at a local fake).
    """
    return (
        Application.builder()
        .token(token)
        .base_url(f"{api_base}/bot")
        .base_file_url(f"{api_base}/file/bot")
        .request(AiohttpRequest(session))
        .get_updates_request(AiohttpRequest(session))
        .updater(None)
        .build()
    )
