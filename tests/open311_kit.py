"""What the Open311 tests share: an office whose filing form has extra questions, the app with
a partner key, and the spec's responses read back (XML through defusedxml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from defusedxml import ElementTree

from bot.app.settings import Settings
from bot.app.web import create_app

KEY = "partner-key-0123456789abcdef"
OTHER_KEY = "second-partner-key-fedcba9876"
BUNDLED = Path(__file__).resolve().parent.parent / "conversation" / "office.toml"
# The filing form with two questions of the office's own: they become service attributes.
EXTRA_STEPS = """  { field = "phone", type = "phone" },
  { field = "floor", type = "text", label = { zh = "楼层", en = "Floor" }, optional = true, max = 20 },
  { field = "urgency", type = "choice", label = { zh = "紧急程度", en = "Urgency" }, options = [{ zh = "一般", en = "Normal" }, { zh = "紧急", en = "Urgent" }] },
]"""
POST_FIELDS = {
    "api_key": KEY,
    "service_code": "city",
    "lat": "31.2304",
    "long": "121.4737",
    "address_string": "XX区幸福路12号",
    "description": "幸福路12号门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "first_name": "四",
    "last_name": "李",
    "phone": "13912345678",
    "email": "lisi@example.com",
    "device_id": "device-7",
    "account_id": "account-7",
    "media_url": "https://photos.example.com/lamp.jpg",
    "attribute[urgency]": "2",
    "attribute[floor]": "1楼",
}


def office_file(tmp_path: Path) -> str:
    text = BUNDLED.read_text("utf-8")
    filing = text.index("[forms.filing]")
    end = text.index('  { field = "phone", type = "phone" },\n]', filing)
    text = text[:end] + EXTRA_STEPS + text[end + len('  { field = "phone", type = "phone" },\n]') :]
    path = tmp_path / "office.toml"
    path.write_text(text, "utf-8")
    return str(path)


def open311_settings(settings: Settings, tmp_path: Path, **changes: Any) -> Settings:
    return settings.replace(
        office_config=office_file(tmp_path), open311_keys=(KEY, OTHER_KEY), **changes
    )


async def open311_client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def xml_of(response: ClientResponse) -> Element:
    assert response.content_type == "text/xml" and response.charset == "utf-8"
    text = await response.text()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    root: Element = ElementTree.fromstring(text.encode())
    return root


def children(element: Element) -> list[str]:
    return [child.tag for child in element]


def text_of(element: Element, name: str) -> str | None:
    found = element.find(name)
    assert found is not None, f"<{name}> missing in <{element.tag}>"
    return found.text


async def file_request(client: TestClient, **changes: str) -> dict[str, Any]:
    fields = {**POST_FIELDS, **changes}
    response = await client.post("/open311/v2/requests.json", data=fields)
    assert response.status == 200, await response.text()
    [item] = await response.json()
    return dict(item)
