"""Typed application keys (aiohttp `web.AppKey`): what the app holds, by name and type."""

from __future__ import annotations

from aiohttp import web

from bot.app.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
