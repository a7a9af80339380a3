"""The desk in real Chromium (Playwright): sign-in, a case walked to closed with the buttons,
the charts drawn, and a phone's 390 px without horizontal scrolling.

With MINYI_SCREENSHOTS=docs/screenshots the pages are saved there at phone and desktop size.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app

from ..conftest import Citizen, unavailable, until_done
from .conftest import ASSIGN_ROADS, PASSWORD, file_case, seed_office

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium calls home, which a closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=zh-CN",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


class Live:
    """The whole app on a loopback port, with a client of its own for seeding."""

    def __init__(self, base: str, client: TestClient) -> None:
        self.base, self.client = base, client


@pytest.fixture
async def live(aiohttp_client: Any, sqlite_only: Settings) -> AsyncIterator[Live]:
    from . import conftest

    app = create_app(sqlite_only, workers=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        client = _Seeder(app)
        await conftest.seed_accounts(client)  # type: ignore[arg-type]
        yield Live(f"http://127.0.0.1:{port}", client)  # type: ignore[arg-type]
    finally:
        await runner.cleanup()


class _Seeder:
    """Enough of a TestClient for the seeding helpers: they only reach the app's runtime."""

    def __init__(self, app: web.Application) -> None:
        self.server = type("Server", (), {"app": app})()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            locale="zh-CN",
            viewport=DESKTOP,
        )
        try:
            yield context
        finally:
            await context.close()


async def open_page(browser: Any) -> tuple[Any, list[str]]:
    """A tab that records console errors (a CSP violation shows up there)."""
    page = await browser.new_page()
    errors: list[str] = []
    # Non-2xx answers (a refused sign-in, no favicon) are logged as failed loads: not errors here.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


async def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/desk")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()


async def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    target = os.environ.get("MINYI_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        await page.screenshot(path=os.path.join(target, f"{name}.png"), full_page=full_page)


async def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"
            " && document.body.scrollWidth <= window.innerWidth"
        )
    )


async def test_sign_in_and_a_wrong_password(live: Live, browser: Any) -> None:
    page, errors = await open_page(browser)
    await sign_in(page, live.base, "roads", "not the password")
    await page.get_by_text("用户名或密码不对").wait_for()
    await sign_in(page, live.base, "roads")
    await page.get_by_role("heading", name="事项列表").wait_for()
    assert "城管局王芳" in await page.content()
    assert not errors


async def test_walking_a_case_to_closed_with_the_buttons(live: Live, browser: Any) -> None:
    code = await file_case(live.client)  # type: ignore[arg-type]
    page, errors = await open_page(browser)
    await sign_in(page, live.base, "intake")
    await page.get_by_role("link", name=code).click()
    await page.get_by_role("button", name="受理", exact=True).click()
    await page.get_by_text("已受理。").wait_for()
    await page.get_by_role("button", name="交办").click()
    # The office's departments as a list (主办), and the co-handling ones (协办) to tick.
    await page.get_by_label("承办单位").select_option(label="区城管局")
    await page.get_by_label("区住建局").check()
    await page.get_by_role("button", name="确定").click()
    await page.get_by_text("前台小刘交办给区城管局。").wait_for()
    assert "区住建局" in await page.content()  # shown as co-handling on the case
    await page.get_by_role("button", name="答复").click()
    await page.get_by_label("答复内容（会发给群众）").fill("路灯已于今天修复，谢谢您的反映。")
    await page.get_by_role("button", name="确定").click()
    await page.get_by_text("前台小刘答复：路灯已于今天修复").wait_for()
    await page.get_by_role("button", name="办结").click()
    await page.get_by_text("前台小刘办结。").wait_for()
    assert "已办结。" in await page.content()
    assert await page.get_by_role("button", name="受理", exact=True).count() == 0
    assert not errors


async def test_the_statistics_page_draws_its_charts(live: Live, browser: Any) -> None:
    for department in ("城管局", "园林局"):
        await file_case(
            live.client,  # type: ignore[arg-type]
            steps=({"type": "accepted"}, {"type": "assigned", "department": department}),
        )
    page, errors = await open_page(browser)
    await sign_in(page, live.base, "boss")
    await page.goto(f"{live.base}/desk/stats")
    for chart in ("#chart-weeks", "#chart-departments"):
        await page.wait_for_selector(f"{chart}[data-drawn] canvas")
        painted = await page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector + ' canvas');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let inked = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
                return {inked, width: canvas.width, height: canvas.height};
            }""",
            chart,
        )
        assert painted["width"] > 100 and painted["height"] > 100, painted
        assert painted["inked"] > 2000, painted  # axes, labels, legend and the series
    assert not errors, errors


async def test_every_page_fits_a_phone_and_a_desktop(live: Live, browser: Any) -> None:
    await seed_office(live.client)  # type: ignore[arg-type]
    code = await file_case(live.client, steps=ASSIGN_ROADS)  # type: ignore[arg-type]
    page, errors = await open_page(browser)
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.context.clear_cookies()
        await page.set_viewport_size(size)
        await page.goto(f"{live.base}/desk")
        assert await no_horizontal_scroll(page), ("signin", size_name)
        await shoot(page, f"signin-{size_name}")
        await sign_in(page, live.base, "intake")
        await page.get_by_role("heading", name="事项列表").wait_for()
        for name, path in (
            ("cases", "/desk/cases"),
            ("case", f"/desk/cases/{code}"),
            ("case-reply", f"/desk/cases/{code}?do=replied"),
            ("stats", "/desk/stats"),
        ):
            await page.goto(live.base + path)
            if name == "stats":
                await page.wait_for_selector("#chart-departments[data-drawn] canvas")
            assert await no_horizontal_scroll(page), (name, size_name)
            await shoot(page, f"{name}-{size_name}", full_page=name != "cases")
    assert not errors, errors


async def test_a_live_conversation_on_the_desk(live: Live, browser: Any) -> None:
    """A call for staff appears, is claimed and answered, and the citizen's next words show up
    on the open page without a reload."""
    minyi = live.client.server.app[MINYI]  # type: ignore[attr-defined]
    citizen = Citizen(minyi, sender="web-live")
    await citizen.file_a_matter()
    await citizen.say("人工")
    await minyi.notifier.run_once()
    page, errors = await open_page(browser)
    await sign_in(page, live.base, "intake")
    await page.goto(f"{live.base}/desk/inbox")
    await page.get_by_text("等待认领").click()
    thread_url = page.url
    await page.get_by_role("button", name="认领").click()
    await page.get_by_text("已认领").first.wait_for()
    await page.get_by_label("回复群众").fill("您好，我是前台小刘，请讲。")
    await page.get_by_role("button", name="发送", exact=True).click()
    await page.get_by_text("您好，我是前台小刘，请讲。").first.wait_for()
    await page.wait_for_timeout(300)  # the page's live stream is open
    assert await citizen.say("东门第三根路灯，晚上全黑") == ""
    await page.get_by_text("东门第三根路灯，晚上全黑").wait_for(timeout=2000)  # within 2 s
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.goto(thread_url)
        assert await no_horizontal_scroll(page), ("thread", size_name)
        await shoot(page, f"thread-{size_name}")
        await page.goto(f"{live.base}/desk/inbox")
        assert await no_horizontal_scroll(page), ("inbox", size_name)
        await shoot(page, f"inbox-{size_name}")
    assert not errors, errors


async def test_the_citizens_web_chat_shows_the_staff_answer_live(live: Live, browser: Any) -> None:
    """Both ends in the browser: a citizen on the web chat page asks for a person, staff claim
    and answer on the desk, and the words appear on the citizen's open page within 2 s."""
    minyi = live.client.server.app[MINYI]  # type: ignore[attr-defined]
    chat, chat_errors = await open_page(browser)
    await chat.set_viewport_size(PHONE)
    await chat.goto(live.base)
    await chat.get_by_text("我要反映").first.wait_for()
    await chat.get_by_placeholder("在这里输入").fill("人工")
    await chat.keyboard.press("Enter")
    await chat.get_by_text("工作人员").first.wait_for()
    await minyi.notifier.run_once()  # the call for staff reaches the desk

    desk, desk_errors = await open_page(browser)
    await sign_in(desk, live.base, "intake")
    await desk.goto(f"{live.base}/desk/inbox")
    await desk.get_by_text("等待认领").click()
    await desk.get_by_role("button", name="认领").click()
    await desk.get_by_text("已认领").first.wait_for()
    await desk.get_by_label("回复群众").fill("您好，我是前台小刘，请讲。")
    await desk.get_by_role("button", name="发送", exact=True).click()
    await desk.get_by_text("您好，我是前台小刘，请讲。").first.wait_for()
    await until_done(minyi.notifier.run_once)  # the words go out to the citizen's channel
    await chat.get_by_text("您好，我是前台小刘，请讲。").wait_for(timeout=2000)  # within 2 s
    await shoot(chat, "webchat-live-phone")
    assert not chat_errors and not desk_errors, (chat_errors, desk_errors)


def require_chromium() -> None:
    """Debian's Chromium, never a downloaded build (the closed network has none to offer)."""
    if not Path(CHROMIUM).exists():
        unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")


async def test_the_web_chat_page_runs_under_its_policy_with_a_cookie_scripts_cannot_read(
    live: Live, browser: Any
) -> None:
    """Issue 13: the page's own script and style run under its CSP (by hash), the greeting and
    a turn work, and the chat's cookie is invisible to the page's scripts (HttpOnly)."""
    page, errors = await open_page(browser)
    await page.goto(live.base + "/")
    await page.get_by_text("我要反映").first.wait_for(timeout=10_000)
    await page.get_by_label("输入消息").fill("1")
    await page.get_by_role("button", name="发送").click()
    await page.get_by_text("类别").first.wait_for(timeout=10_000)
    assert await page.evaluate("document.cookie") == ""
    cookies = {c["name"]: c for c in await browser.cookies(live.base)}
    assert cookies["minyi_chat"]["httpOnly"] and cookies["minyi_chat"]["sameSite"] == "Lax"
    assert errors == []
