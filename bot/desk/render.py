"""Server-rendered pages: Jinja2 templates shipped in the package, escaped by default."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from bot.desk.keys import CSRF, STAFF
from bot.desk.services import desk_services

LANGUAGE = "zh"  # the desk speaks the office's language; every sentence is in the catalog

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("bot.desk", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test, not the page
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    texts = desk_services(request).catalog.for_language(LANGUAGE)
    account = request.get(STAFF)
    page = _templates.get_template(template).render(
        t=texts,
        staff=account,
        csrf=request.get(CSRF, ""),
        path=request.path,
        **context,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
