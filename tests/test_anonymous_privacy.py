"""An anonymous case carries no contact through any route: the API (one case, the list, the
events feed), the back-office stream, the desk, Open311 and the staff alerts (issue 17.2)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi, open_minyi
from storage.models import Case, Citizen, Notification, OutboxEntry
from storage.relay import Relay

from .conftest import Citizen as ChatCitizen
from .desk.conftest import seed_accounts, signed_in

AUTH = {"Authorization": "Bearer test-token"}
CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")
QUERY = re.compile(r"查询码是 ([0-9A-Z]{8})")
STORY = "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"


async def file_anonymously(runtime: Minyi) -> tuple[str, str]:
    citizen = ChatCitizen(runtime, "openid-anon", "wechat")
    for answer in ("1", "4", STORY, "XX区幸福路12号", "跳过", "匿名"):
        await citizen.say(answer)
    receipt = await citizen.say("1")
    code, query = CODE.search(receipt), QUERY.search(receipt)
    assert code is not None and query is not None, receipt
    # Added words reach staff as an alert: it must name no one either.
    await citizen.say(code.group())
    await citizen.say("补充")
    await citizen.say("灯杆旁边的电线也露出来了，很危险。")
    return code.group(), query.group(1)


def no_contact(document: dict[str, Any]) -> None:
    assert document["anonymous"] is True
    assert document["contact"] == {"name": "", "phone": ""}


async def test_no_route_shows_a_contact_for_an_anonymous_case(
    aiohttp_client: Any, database_settings: Settings
) -> None:
    client: TestClient = await aiohttp_client(create_app(database_settings, workers=False))
    runtime = client.server.app[MINYI]
    code, query = await file_anonymously(runtime)

    one = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    no_contact(one)
    listing = await (await client.get("/api/v1/cases", headers=AUTH)).json()
    [item] = [c for c in listing["cases"] if c["code"] == code]
    no_contact(item)
    await Relay(runtime.db, runtime.cipher, None, "").publish_once()  # the feed's positions
    feed = await (await client.get("/api/v1/events", headers=AUTH)).json()
    submitted = next(e for e in feed["events"] if e["type"] == "case.submitted")
    assert "contact" not in submitted["data"] and submitted["data"]["anonymous"] is True
    assert query not in json.dumps(feed, ensure_ascii=False)

    async with runtime.units() as uow:
        [case] = list(await uow.session.scalars(select(Case)))
        assert case.anonymous and case.contact_name_enc is None and case.contact_phone_enc is None
        assert (
            case.citizen_id is None and case.query_code_hash and query not in case.query_code_hash
        )
        assert list(await uow.session.scalars(select(Citizen))) == []
        identity = await uow.people.find_identity("wechat", "openid-anon")
        assert identity is not None and identity.citizen_id is None
        outbox = list(await uow.session.scalars(select(OutboxEntry)))
        assert outbox and all(entry.private_enc is None for entry in outbox)
        [alert] = [
            n for n in await uow.session.scalars(select(Notification)) if n.topic == "supplemented"
        ]
        composed = await runtime.notifier.staff.compose(uow, alert)
        assert "电话" not in composed.text and "电线" in composed.text

    await seed_accounts(client)
    await signed_in(client, "intake")
    page = await (await client.get(f"/desk/cases/{code}")).text()
    assert "匿名" in page and "138" not in page
    assert "补充：灯杆旁边的电线也露出来了" in page  # the desk reads the new steps too

    open311 = await client.get(f"/open311/v2/requests/{code}.json")
    assert open311.status == 200
    [request] = await open311.json()
    assert request["service_request_id"] == code
    assert not {"first_name", "last_name", "phone", "email", "contact"} & set(request)


@pytest.fixture
def redis_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    from .conftest import settings_for

    return settings_for(request, "postgres+redis", tmp_path)


async def test_the_stream_carries_no_contact_for_an_anonymous_case(
    redis_settings: Settings,
) -> None:
    async with open_minyi(redis_settings) as runtime:
        assert runtime.redis is not None
        code, _ = await file_anonymously(runtime)
        relay = Relay(runtime.db, runtime.cipher, runtime.redis, redis_settings.stream)
        assert await relay.publish_once() >= 1
        entries = await runtime.redis.xrange(redis_settings.stream)
        events = [json.loads(fields[b"data"]) for _, fields in entries]
        assert events[0]["code"] == code and events[0]["anonymous"] is True
        assert all("contact" not in data for data in events)
