"""Schemathesis against /api/v1's own OpenAPI document (GET /api/v1/openapi.json), on SQLite and
PostgreSQL: every request the document allows, and many it does not, get an answer the document
describes, and never a 5xx. `MINYI_FUZZ_EXAMPLES` sets the examples per operation."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from bot.app.settings import Settings
from bot.app.web import create_app

AUTH = {"Authorization": "Bearer test-token"}
EXAMPLES = int(os.environ.get("MINYI_FUZZ_EXAMPLES", "25"))
FILING = ("1", "4", "路灯坏了一个月", "幸福路12号", "跳过", "张三", "13800138000", "1")


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """The app on a loopback port, on a loop of its own in a thread (schemathesis is synchronous)."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()


@pytest.fixture
def api_schema(database_settings: Settings) -> Iterator[Any]:
    with serving(create_app(database_settings, workers=False)) as base:
        chat = requests.Session()  # keeps the chat's cookie, as the page's browser does
        for text in FILING:  # a real case, so that lists and the event stream are not empty
            answer = chat.post(f"{base}/webchat/messages", json={"text": text}, timeout=30)
            assert answer.status_code == 200, answer.text
        yield schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json", headers=AUTH)


schema = schemathesis.pytest.from_fixture("api_schema")


# Every check but two: the API ignores query parameters it does not know, as HTTP APIs do, and
# refuses what the schema cannot say (`from` after `to`) with a 422 naming the rule.
LENIENT_ON_PURPOSE = [negative_data_rejection, positive_data_acceptance]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_own_document(case: Any) -> None:
    case.call_and_validate(headers=AUTH, excluded_checks=LENIENT_ON_PURPOSE)
