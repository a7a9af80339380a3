"""A real GeoReport v2 client from PyPI (`georeport`) reads the endpoint over HTTP, in JSON and
in XML. It has no POST or token method: those are checked against the spec in test_open311."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from georeport import GeoReport

from bot.app.settings import Settings
from bot.app.web import create_app

from .open311_kit import file_request, open311_settings


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_georeport_client_reads_every_get_method(
    aiohttp_server: Any, aiohttp_client: Any, database_settings: Settings, tmp_path: Path, fmt: str
) -> None:
    server = await aiohttp_server(
        create_app(open311_settings(database_settings, tmp_path), workers=False)
    )
    client = await aiohttp_client(server)
    first = (await file_request(client))["service_request_id"]
    second = (await file_request(client, service_code="environment"))["service_request_id"]
    georeport = GeoReport(str(server.make_url("/open311/v2")), output_format=fmt)

    services = await asyncio.to_thread(georeport.get_service_list)
    assert [s["service_code"] for s in services][:4] == ["housing", "labour", "environment", "city"]
    definition = await asyncio.to_thread(georeport.get_service_definition, "city")
    assert definition["service_code"] == "city"
    attributes = definition["attributes"]
    if fmt == "xml":  # xmltodict: one <attributes> holding a list of <attribute>
        attributes = attributes["attribute"]
    assert [a["code"] for a in attributes] == ["floor", "urgency"]

    requests = await asyncio.to_thread(georeport.get_service_requests)
    assert [r["service_request_id"] for r in requests] == [second, first]
    if fmt == "json":
        # In XML the client itself fails on an empty list: xmltodict reads <service_requests/>
        # as None, and it then asks None for its <request> (so would any server's empty list).
        assert await asyncio.to_thread(georeport.get_service_requests, status="closed") == []
    only = await asyncio.to_thread(georeport.get_service_requests, service_code="environment")
    # One request: JSON keeps a list, xmltodict gives the single element itself.
    only = only if isinstance(only, list) else [only]
    assert [r["service_request_id"] for r in only] == [second]

    one = await asyncio.to_thread(georeport.get_service_request, first)
    assert one["service_request_id"] == first and one["status"] == "open"
    assert one["service_code"] == "city" and one["media_url"].startswith("https://")
