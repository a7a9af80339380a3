"""Typed application keys (aiohttp `web.AppKey`): what the app holds, by name and type."""

from __future__ import annotations

from aiohttp import web

from bot.app.wiring import Minyi

# The process's services, for the app's own handlers (health, metrics) and for tests.
MINYI = web.AppKey("minyi", Minyi)
