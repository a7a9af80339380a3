"""What one desk request carries once the guard has seen it (typed request keys)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.desk.policy import Staff

STAFF = web.RequestKey("staff", Staff)  # the signed-in person
CSRF = web.RequestKey("csrf", str)  # their session's CSRF token
SESSION_TOKEN = web.RequestKey("session_token", str)  # the cookie value, to sign out
FORM = web.RequestKey("desk_form", dict[str, Any])  # what a refused form said, to show it again
