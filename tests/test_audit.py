"""件件可倒查 for everyone: `minyi audit verify` and GET /api/v1/cases/{code}/verify find an
altered timeline (the hash chain was checked by nothing anyone could run)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from bot.app.appkeys import MINYI
from bot.app.audit import verify
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi

from .test_progress_api import AUTH, new_case, post


@pytest.fixture
async def client(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(database_settings, workers=False))


async def tamper(minyi: Minyi, code: str) -> None:
    """What a DBA could do: switch the append-only trigger off and rewrite an event."""
    async with minyi.db.engine.begin() as conn:
        if minyi.db.is_postgres:
            await conn.execute(
                text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only")
            )
        else:
            await conn.execute(text("DROP TRIGGER case_events_no_update"))
        await conn.execute(
            text(
                "UPDATE case_events SET actor = 'staff:李' WHERE seq = 2 AND case_id = "
                "(SELECT id FROM cases WHERE code = :code)"
            ),
            {"code": code},
        )
        if minyi.db.is_postgres:
            await conn.execute(
                text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only")
            )


async def test_the_route_and_the_command_find_an_altered_event(client: TestClient) -> None:
    minyi = client.server.app[MINYI]
    whole, altered = await new_case(client, "a"), await new_case(client, "b")
    for code in (whole, altered):
        assert (await post(client, code, {"type": "accepted"}))[0] == 200
    answer = await client.get(f"/api/v1/cases/{altered}/verify", headers=AUTH)
    assert (await answer.json())["verified"] is True

    await tamper(minyi, altered)
    answer = await client.get(f"/api/v1/cases/{altered}/verify", headers=AUTH)
    body = await answer.json()
    assert body == {
        "code": altered,
        "verified": False,
        "events": 2,
        "broken_at": 2,
        "reason": "content was changed after it was written",
    }
    assert (await (await client.get(f"/api/v1/cases/{whole}/verify", headers=AUTH)).json())[
        "verified"
    ]

    out = io.StringIO()
    assert await verify(minyi.units, [], out) == 1  # all cases: the altered one is found
    assert f"{altered}: BROKEN at event 2" in out.getvalue()
    assert "1 of 2 cases verified; 1 broken" in out.getvalue()
    out = io.StringIO()
    assert await verify(minyi.units, [whole], out) == 0
    assert await verify(minyi.units, ["XF20261130-ZZZZZZ"], io.StringIO()) == 1


async def test_the_route_needs_the_token_and_a_known_case(client: TestClient) -> None:
    assert (await client.get("/api/v1/cases/XF20261130-ZZZZZZ/verify")).status == 401
    missing = await client.get("/api/v1/cases/XF20261130-ZZZZZZ/verify", headers=AUTH)
    assert missing.status == 404
