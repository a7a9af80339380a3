"""Bodies that arrive in more than one TCP segment are read whole (issue 13, item 1)."""

from __future__ import annotations

import json
from typing import Any

from bot.app.web import create_app
from tests.conftest import sqlite_settings
from tests.split_body import post_in_pieces

from .conftest import MakeRig
from .sms_fakes import http_push_headers

JSON = {"Content-Type": "application/json"}


async def test_a_signed_sms_push_in_two_pieces_is_accepted(make_rig: MakeRig) -> None:
    rig = await make_rig("http")
    body = json.dumps(
        {"from": "+8613800138000", "text": "1 处理得很好，谢谢", "id": "gw-split-1"},
        ensure_ascii=False,
    ).encode()
    headers = http_push_headers(body)
    status, _, answer = await post_in_pieces(rig.client, "/sms/http/inbound", body, headers)
    assert status == 200, answer
    assert [r.text for r in rig.recorder.replies] == ["1 处理得很好，谢谢"]
    assert await rig.rejections("bad_signature") == 0


async def test_an_events_api_call_in_three_pieces_is_read(aiohttp_client: Any, tmp_path) -> None:
    client = await aiohttp_client(create_app(sqlite_settings(tmp_path), workers=False))
    body = json.dumps({"type": "note", "note": "已联系当事人" * 20}, ensure_ascii=False).encode()
    headers = {**JSON, "Authorization": "Bearer test-token"}
    status, _, answer = await post_in_pieces(
        client, "/api/v1/cases/XF20261122-7K3M9Q/events", body, headers, pieces=3
    )
    # The body was read whole and is valid: the answer is about the (unknown) case, not the body.
    assert status == 404, answer
    assert json.loads(answer)["error"] == "not_found"


async def test_a_web_chat_turn_in_two_pieces_is_answered(aiohttp_client: Any, tmp_path) -> None:
    client = await aiohttp_client(create_app(sqlite_settings(tmp_path), workers=False))
    body = json.dumps({"text": "菜单"}, ensure_ascii=False).encode()
    status, _, answer = await post_in_pieces(client, "/webchat/messages", body, JSON)
    assert status == 200, answer
    assert json.loads(answer)["replies"]
