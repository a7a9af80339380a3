"""`minyi wechat menu`, run as an operator runs it, against the fake WeChat API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from channels.wechat.menu import load_menu

from .wechat_kit import APP_ID, APP_SECRET, TOKEN, FakeWeChatApi

ROOT = Path(__file__).resolve().parent.parent.parent


async def minyi(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """The command in a subprocess, while this test's loop keeps serving the fake API."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    environment["PYTHONPATH"] = str(ROOT)  # this checkout's code
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


def account(fake: FakeWeChatApi) -> dict[str, str]:
    return {
        "MINYI_WECHAT_TOKEN": TOKEN,
        "MINYI_WECHAT_APP_ID": APP_ID,
        "MINYI_WECHAT_APP_SECRET": APP_SECRET,
        "MINYI_WECHAT_API_BASE": fake.base,
    }


async def test_the_menu_is_pushed_and_wechats_answer_printed(
    tmp_path: Path, fake_wechat: FakeWeChatApi
) -> None:
    code, out, err = await minyi(tmp_path, "wechat", "menu", **account(fake_wechat))
    assert code == 0, err
    assert json.loads(out) == {"errcode": 0, "errmsg": "ok"}
    [call] = fake_wechat.of("menu/create")
    assert call.json == load_menu() and "我要反映".encode() in call.body
    assert call.query["access_token"] == "ACCESS_TOKEN_1"


async def test_a_refused_menu_prints_the_answer_and_fails(
    tmp_path: Path, fake_wechat: FakeWeChatApi
) -> None:
    fake_wechat.answer_next("menu/create", {"errcode": 40018, "errmsg": "invalid button name size"})
    code, out, err = await minyi(tmp_path, "wechat", "menu", **account(fake_wechat))
    assert code == 1
    assert json.loads(out)["errcode"] == 40018
    assert err.strip().splitlines()[-1] == (
        "minyi: WeChat refused the menu (40018); fix the menu file and run this again"
    )


async def test_a_wrong_menu_file_is_refused_before_calling_wechat(
    tmp_path: Path, fake_wechat: FakeWeChatApi
) -> None:
    menu = tmp_path / "menu.json"
    menu.write_text('{"button": [{"type": "click", "name": "查询", "key": "查 询"}]}', "utf-8")
    code, _, err = await minyi(
        tmp_path, "wechat", "menu", **account(fake_wechat), MINYI_WECHAT_MENU=str(menu)
    )
    assert code == 2 and "key '查 询'" in err and len(err.strip().splitlines()) == 1
    no_secret = {**account(fake_wechat), "MINYI_WECHAT_APP_SECRET": ""}
    code, _, err = await minyi(tmp_path, "wechat", "menu", **no_secret)
    assert code == 2
    assert err.strip() == "minyi: MINYI_WECHAT_APP_SECRET: required to push the menu"
    assert fake_wechat.calls == []


async def test_a_click_key_that_opens_nothing_is_refused(
    tmp_path: Path, fake_wechat: FakeWeChatApi
) -> None:
    menu = tmp_path / "menu.json"
    menu.write_text('{"button": [{"type": "click", "name": "投诉", "key": "complain"}]}', "utf-8")
    code, _, err = await minyi(
        tmp_path, "wechat", "menu", **account(fake_wechat), MINYI_WECHAT_MENU=str(menu)
    )
    assert code == 2 and "'complain', which opens nothing" in err and "file" in err
    assert not [call for call in fake_wechat.calls if "menu/create" in str(call)]
