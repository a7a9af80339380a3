"""在线对话 on the desk: calls for staff appear, 认领 / 发送 / 结束 reach the citizen, the citizen's
words come back live (SSE), and nobody sees or touches a conversation outside their scope."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from storage.models import Case, StaffThread

from ..conftest import Citizen
from .conftest import csrf_of, runtime_of, sign_in, uow_of

THREAD_LINK = re.compile(r'href="/desk/threads/(\d+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


async def drain(client: TestClient) -> None:
    notifier = runtime_of(client).notifier
    for _ in range(20):
        if not await notifier.run_once():
            return


async def asks_for_a_person(client: TestClient, sender: str = "web-1") -> Citizen:
    citizen = Citizen(runtime_of(client), sender=sender)
    await citizen.file_a_matter()
    await citizen.say("人工")
    await drain(client)
    return citizen


async def thread_id(client: TestClient) -> int:
    page = await (await client.get("/desk/inbox")).text()
    found = THREAD_LINK.findall(page)
    assert found, page
    return int(found[0])


async def act(client: TestClient, thread: int, do: str, text: str = "", nonce: str = "") -> str:
    page = await (await client.get(f"/desk/threads/{thread}")).text()
    form = {"csrf": csrf_of(page), "do": do, "text": text}
    form["nonce"] = nonce or NONCE.findall(page)[0]
    answer = await client.post(f"/desk/threads/{thread}", data=form)
    assert answer.status == 200, await answer.text()
    return await answer.text()


def mailbox_texts(client: TestClient, session: str) -> Any:
    return runtime_of(client).channels["webchat"].mailbox.take(session)  # type: ignore[attr-defined]


async def test_a_call_for_staff_claimed_and_answered_on_the_desk(desk: TestClient) -> None:
    citizen = await asks_for_a_person(desk)
    assert (await sign_in(desk, "intake")).status == 303
    thread = await thread_id(desk)
    inbox = await (await desk.get("/desk/inbox")).text()
    assert "等待认领" in inbox and "138****8000" in inbox and "13800138000" not in inbox

    page = await act(desk, thread, "claim")
    assert "已认领" in page
    said = await act(desk, thread, "send", "您好，我是前台小刘，请说。")
    assert "您好，我是前台小刘，请说。" in said
    await drain(desk)
    texts = [reply.text for reply in await mailbox_texts(desk, "web-1")]
    assert "工作人员前台小刘已接手" in texts[0]
    assert "工作人员前台小刘：您好，我是前台小刘，请说。" in texts

    assert await citizen.say("路灯在东门第三根") == ""  # to the person, not the bot
    messages = await (await desk.get(f"/desk/threads/{thread}?part=messages")).text()
    assert "路灯在东门第三根" in messages

    await act(desk, thread, "end")
    await drain(desk)
    assert "1 我要反映" in await citizen.say("菜单")
    assert str(thread) not in await (await desk.get("/desk/inbox?part=list")).text()


async def test_the_citizens_words_arrive_on_the_open_desk_live(desk: TestClient) -> None:
    citizen = await asks_for_a_person(desk)
    await sign_in(desk, "intake")
    thread = await thread_id(desk)
    await act(desk, thread, "claim")
    stream = await desk.get("/desk/live")
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["X-Accel-Buffering"] == "no"
    assert "frame-ancestors 'none'" in stream.headers["Content-Security-Policy"]
    await asyncio.sleep(0.05)  # the stream listens now
    await citizen.say("我在等您回复")
    event = await asyncio.wait_for(_next_event(stream), timeout=10)
    assert event == ("thread", str(thread))
    stream.close()


async def test_the_live_feed_names_a_conversation_only_to_those_who_may_see_it(
    desk: TestClient,
) -> None:
    """Two departments' desks open at once, twice over (the second pair answered from what the
    first pair's check remembered): only 城管局's streams name 城管局's conversation."""
    citizen = await asks_for_a_person(desk)
    async with uow_of(desk) as uow:
        await uow.session.execute(update(Case).values(department="城管局"))
        await uow.commit()
    await sign_in(desk, "roads")
    await act(desk, await thread_id(desk), "claim")  # the citizen now talks to 城管局
    base = str(desk.make_url("/")).rstrip("/")
    sessions = [
        aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        for _ in range(4)
    ]
    streams: list[aiohttp.ClientResponse] = []
    try:
        for session, who in zip(sessions, ("roads", "parks", "roads", "parks"), strict=True):
            assert (await sign_in(session, who)).status == 303  # type: ignore[arg-type]
            streams.append(await session.get("/desk/live"))
        await asyncio.sleep(0.05)  # the streams listen now
        await citizen.say("还在吗")
        roads = [asyncio.create_task(_next_event(stream)) for stream in streams[0::2]]
        parks = [asyncio.create_task(_next_event(stream)) for stream in streams[1::2]]
        for heard in await asyncio.wait_for(asyncio.gather(*roads), timeout=10):
            assert heard[0] == "thread"
        await asyncio.sleep(0.5)  # had 园林局 been told, it would have been by now
        assert not any(task.done() for task in parks)
        for task in parks:
            task.cancel()
    finally:
        for stream in streams:
            stream.close()
        for session in sessions:
            await session.close()


async def _next_event(stream: Any) -> tuple[str, str]:
    kind, data = "", ""
    async for raw in stream.content:
        line = raw.decode().rstrip("\n").rstrip("\r")
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data = line.removeprefix("data:").strip()
        elif not line and kind:
            return kind, data
    raise AssertionError("the stream ended")


async def test_a_reloaded_send_is_taken_once(desk: TestClient) -> None:
    await asks_for_a_person(desk)
    await sign_in(desk, "intake")
    thread = await thread_id(desk)
    await act(desk, thread, "claim")
    await act(desk, thread, "send", "请稍等", nonce="same-form")
    await act(desk, thread, "send", "请稍等", nonce="same-form")  # the browser posts it again
    await drain(desk)
    texts = [reply.text for reply in await mailbox_texts(desk, "web-1")]
    assert texts.count("工作人员前台小刘：请稍等") == 1


async def test_a_conversation_outside_ones_department_is_not_there(desk: TestClient) -> None:
    await asks_for_a_person(desk)
    async with uow_of(desk) as uow:  # the matter went to 城管局
        await uow.session.execute(update(Case).values(department="城管局"))
        await uow.commit()
    await sign_in(desk, "roads")
    thread = await thread_id(desk)  # 城管局 sees it
    desk.session.cookie_jar.clear()
    await sign_in(desk, "parks")  # 园林局 does not
    assert "threads/" not in await (await desk.get("/desk/inbox")).text()
    assert (await desk.get(f"/desk/threads/{thread}")).status == 404
    page = await (await desk.get("/desk/cases")).text()
    answer = await desk.post(
        f"/desk/threads/{thread}", data={"csrf": csrf_of(page), "do": "claim", "nonce": "x"}
    )
    assert answer.status == 404
    async with uow_of(desk) as uow:
        claimed = await uow.session.get(StaffThread, thread)
        assert claimed is not None and claimed.claimed_at is None


async def test_administrators_read_but_do_not_talk(desk: TestClient) -> None:
    await asks_for_a_person(desk)
    await sign_in(desk, "root")
    thread = await thread_id(desk)
    page = await (await desk.get(f"/desk/threads/{thread}")).text()
    assert 'value="claim"' not in page
    answer = await desk.post(
        f"/desk/threads/{thread}", data={"csrf": csrf_of(page), "do": "claim", "nonce": "y"}
    )
    assert answer.status == 403


async def test_a_post_without_the_csrf_token_is_refused(desk: TestClient) -> None:
    await asks_for_a_person(desk)
    await sign_in(desk, "intake")
    thread = await thread_id(desk)
    answer = await desk.post(f"/desk/threads/{thread}", data={"do": "claim", "nonce": "z"})
    assert answer.status == 403
