"""Leaders' mailboxes (领导信箱) and 批示: the conversation lists the office's mailboxes, a letter
is a case with `mailbox` set and routed where that mailbox sends letters, and a leader's
instruction reaches the citizen's status, the citizen, and every staff front end."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi

from .conftest import Citizen
from .memory_conversation import OnMemory
from .test_notifications import FakeStaffEndpoints, drain, endpoints, with_staff
from .web_citizen import web_sender, with_cookie

__all__ = ["endpoints"]  # the fixture, used by name
AUTH = {"Authorization": "Bearer test-token"}
LETTER = (
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑。",
    "XX区幸福路12号",
    "跳过",
    "张三",
    "13800138000",
)


async def write_a_letter(citizen: Citizen, mailbox: str = "2") -> str:
    menu = await citizen.say("菜单")
    assert "7 领导信箱" in menu
    boxes = await citizen.say("7")
    assert "1 区委书记信箱（区委书记）" in boxes and "2 区长信箱（区长）" in boxes
    chosen = await citizen.say(mailbox)
    assert "您写信给：区长信箱" in chosen and "类别" in chosen
    for answer in LETTER:
        await citizen.say(answer)
    receipt = await citizen.say("1")
    return receipt.split("编号是 ")[1].split("，")[0]


async def test_a_letter_on_memory_carries_its_mailbox() -> None:
    memory = OnMemory()
    await write_a_letter(memory.citizen())
    case = memory.only_case()
    assert (case.mailbox, case.department) == ("mayor", "xfj")


async def test_the_words_pick_a_mailbox_too() -> None:
    memory = OnMemory()
    citizen = memory.citizen()
    assert "区委书记信箱" in await citizen.say("领导信箱")
    assert "请回复列表里的数字（1～2）" in await citizen.say("9")
    assert "您写信给：区委书记信箱" in await citizen.say("书记信箱")
    await citizen.say("取消")
    assert "您写信给：区长信箱" in await citizen.say("领导信箱") + await citizen.say("区长")
    assert "7 领导信箱" in await citizen.say("菜单")


async def test_a_letter_and_its_instruction_reach_the_citizen(
    aiohttp_client: Any, database_settings: Settings, endpoints: tuple[FakeStaffEndpoints, str]
) -> None:
    fake, base = endpoints
    client: TestClient = await aiohttp_client(
        create_app(with_staff(database_settings, base), workers=False)
    )
    runtime: Minyi = client.server.app[MINYI]
    citizen = Citizen(runtime, sender=web_sender(runtime))
    code = await write_a_letter(citizen)
    case = await (await client.get(f"/api/v1/cases/{code}", headers=AUTH)).json()
    assert (case["mailbox"], case["department"]) == ("mayor", "xfj")
    letters = await client.get("/api/v1/cases?department=xfj", headers=AUTH)
    assert [c["code"] for c in (await letters.json())["cases"]] == [code]

    for body in (
        {"type": "accepted", "staff": "quzhang"},
        {"type": "assigned", "department": "cgj", "staff": "quzhang"},
        {"type": "instructed", "note": "请城管局三日内修好路灯。", "staff": "quzhang"},
    ):
        response = await client.post(f"/api/v1/cases/{code}/events", json=body, headers=AUTH)
        assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["status"] == "assigned" and answer["events"][-1]["type"] == "instructed"
    refused = await client.post(
        f"/api/v1/cases/{code}/events", json={"type": "instructed"}, headers=AUTH
    )
    assert refused.status == 422  # an instruction without words

    await drain(runtime)
    pending = await (await client.get("/webchat/messages", **with_cookie())).json()
    texts = [r["text"] for r in pending["replies"]]
    assert any("有领导批示：请城管局三日内修好路灯。" in t for t in texts), texts
    status = await citizen.say(code)
    assert "领导批示：请城管局三日内修好路灯。" in status and "交办区城管局办理" in status
    # The handling department hears of it on every staff front end, with the leader's words.
    hooked = [alert for body, _ in fake.webhook for alert in json.loads(body)["alerts"]]
    instructed = [a for a in hooked if a.get("reason") == "instructed"]
    assert instructed and "请城管局三日内修好路灯" in instructed[0]["text"]
    assert "承办：区城管局" in instructed[0]["text"]
    assert any("领导批示" in str(m) for m in fake.wecom)
    assert any("领导批示" in str(m) for m in fake.telegram)
