"""A citizen on the web chat page, over HTTP only: tests that use it depend on no wiring inside
the app (`POST /webchat/messages` and the back-office API are the whole surface)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

AUTH = {"Authorization": "Bearer test-token"}
CASE_CODE = re.compile(r"XF\d{8}-[0-9A-HJKMNP-TV-Z]{6}")
FILING = ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号", "跳过", "张三")


@dataclass
class WebCitizen:
    """One person's chat: the cookie the server issued, kept per citizen so that one client
    serves many."""

    client: TestClient
    cookies: dict[str, str] = field(default_factory=dict)

    async def say(self, text: str) -> str:
        self.client.session.cookie_jar.clear()  # another citizen's cookie must not go along
        response = await self.client.post(
            "/webchat/messages",
            json={"text": text},
            cookies=self.cookies,
        )
        assert response.status == 200, await response.text()
        self.cookies |= {name: morsel.value for name, morsel in response.cookies.items()}
        replies = (await response.json())["replies"]
        return "\n".join(reply["text"] for reply in replies)

    async def file_a_matter(self, phone: str = "13800138000") -> str:
        """Files a matter through the whole form; returns its case code."""
        for text in (*FILING, phone):
            await self.say(text)
        receipt = await self.say("1")
        found = CASE_CODE.search(receipt)
        assert found, receipt
        return found.group()


async def post_event(
    client: TestClient, code: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/cases/{code}/events: the status and the JSON answer."""
    response = await client.post(
        f"/api/v1/cases/{code}/events", json=body, headers={**AUTH, **headers}
    )
    return response.status, await response.json()


async def get_case(client: TestClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/cases/{code}", headers=AUTH)
    assert response.status == 200, await response.text()
    return dict(await response.json())


# A web chat's cookie as the server would issue it, and the sender the engine knows it by (the
# cookie's keyed hash), for tests that talk to the engine directly and read the mailbox over HTTP.
CHAT_COOKIE = "c" * 43


def web_sender(runtime: Any, cookie: str = CHAT_COOKIE) -> str:
    return str(runtime.cipher.digest(cookie, "webchat-session"))


def with_cookie(cookie: str = CHAT_COOKIE) -> dict[str, dict[str, str]]:
    return {"cookies": {"minyi_chat": cookie}}
