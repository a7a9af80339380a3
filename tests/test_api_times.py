"""Every time the API and the stream write is ISO 8601 in the office's zone, with its offset.

Found when tried as a new user would: a case read back showed `+00:00` for the times the
database returned and `+08:00` for the deadlines computed in the office's calendar, from one
call to the next.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.settings import Settings
from bot.app.web import create_app

from .test_progress_api import AUTH, new_case, post

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def times_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for item in value.values() for t in times_in(item)]
    if isinstance(value, list):
        return [t for item in value for t in times_in(item)]
    return [value] if isinstance(value, str) and ISO_TIME.match(value) else []


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def test_every_time_is_in_the_office_zone(client: TestClient) -> None:
    code = await new_case(client)
    for body in ({"type": "accepted"}, {"type": "assigned", "department": "区城管局"}):
        assert (await post(client, code, body))[0] == 200
    status, replied = await post(client, code, {"type": "replied", "note": "已修复。"})
    assert status == 200
    answers = [
        replied,
        await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json(),
        await (await client.get("/api/v1/cases", headers=AUTH)).json(),
        await (await client.get("/api/v1/events", headers=AUTH)).json(),
        await (await client.get("/api/v1/stats", headers=AUTH)).json(),
    ]
    found = [t for answer in answers for t in times_in(answer)]
    assert len(found) > 20
    offsets = {datetime.fromisoformat(t).utcoffset() for t in found}
    assert {str(offset) for offset in offsets} == {"8:00:00"}, found
