"""One structure, rendered as GeoReport v2 JSON (a bare list, or one object) or as its XML
(root element, one element per item, lists nested under their singular name)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from aiohttp import web

from channels.base import json_response

FORMATS = ("json", "xml")
XML_TYPE = "text/xml"
# The spec's names for one item of a list; anything else drops its plural "s".
SINGULAR = {"service_requests": "request", "errors": "error"}


def render(data: Any, fmt: str, root: str, status: int = 200) -> web.Response:
    """`data` (a list of items or one object) under `root`, in `fmt` (json or xml)."""
    if fmt == "json":
        return json_response(data, status=status)
    element = ElementTree.Element(root)
    _fill(element, root, data)
    body = ElementTree.tostring(element, encoding="unicode")
    return web.Response(
        text='<?xml version="1.0" encoding="utf-8"?>\n' + body,
        status=status,
        content_type=XML_TYPE,
        charset="utf-8",
    )


def errors(status: int, descriptions: list[str], fmt: str) -> web.Response:
    """The spec's error list: one `{code, description}` per problem."""
    items = [{"code": status, "description": d} for d in descriptions]
    return render(items, fmt, "errors", status)


def _fill(element: ElementTree.Element, name: str, value: Any) -> None:
    if isinstance(value, list):
        item_name = SINGULAR.get(name, name.removesuffix("s"))
        for item in value:
            _fill(ElementTree.SubElement(element, item_name), item_name, item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _fill(ElementTree.SubElement(element, key), key, inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
