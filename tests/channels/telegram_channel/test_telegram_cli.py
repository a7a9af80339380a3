"""`minyi telegram webhook` and `minyi telegram poll` as an operator runs them, against the fake."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from channels.telegram import TelegramChannel

from ...conftest import PII_KEY
from .conftest import VirtualTime
from .fake_telegram import SECRET, TOKEN, FakeBotApi, TelegramUser

ROOT = Path(__file__).resolve().parents[3]


def environment(fake: FakeBotApi, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's code
        MINYI_TELEGRAM_TOKEN=TOKEN,
        MINYI_TELEGRAM_SECRET=SECRET,
        MINYI_TELEGRAM_API_BASE=fake.base,
        MINYI_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/minyi.db",
        MINYI_PII_KEY=PII_KEY,
    )
    return env


async def minyi(
    *args: str, env: dict[str, str], cwd: Path
) -> tuple[asyncio.subprocess.Process, Callable[[], Any]]:
    """Start `minyi …` without blocking this loop (it serves the fake the command talks to)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def finish() -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    return process, finish


async def test_webhook_sets_url_secret_and_allowed_updates_and_prints_the_answer(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    env = environment(fake_api, tmp_path)
    url = "https://minyi.example.org/telegram"
    _, finish = await minyi("telegram", "webhook", "--url", url, env=env, cwd=tmp_path)
    code, out, err = await finish()
    assert code == 0, err
    [call] = fake_api.called("setWebhook")
    assert call.params["url"] == url
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert "drop_pending_updates" not in call.params or not call.params["drop_pending_updates"]
    assert out.splitlines() == [
        f"Telegram: webhook set to {url}",
        "  pending updates: 0",
        "  allowed updates: message, callback_query",
    ]

    _, finish = await minyi(
        "telegram", "webhook", "--delete", "--drop-pending", env=env, cwd=tmp_path
    )
    code, out, err = await finish()
    assert code == 0, err
    [call] = fake_api.called("deleteWebhook")
    assert call.params["drop_pending_updates"] is True
    assert "no webhook is set" in out


async def test_webhook_refusals_are_one_line(fake_api: FakeBotApi, tmp_path: Path) -> None:
    env = environment(fake_api, tmp_path)
    _, finish = await minyi(
        "telegram", "webhook", "--url", "http://minyi.example.org/telegram", env=env, cwd=tmp_path
    )
    code, _, err = await finish()
    assert code == 2 and "Telegram delivers only to https:// addresses" in err
    _, finish = await minyi(
        "telegram", "webhook", "--url", "https://minyi.example.org:8080/t", env=env, cwd=tmp_path
    )
    code, _, err = await finish()
    assert code == 2 and "ports 443, 80, 88, 8443" in err

    fake_api.fail("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host")
    _, finish = await minyi(
        "telegram", "webhook", "--url", "https://nowhere.invalid/telegram", env=env, cwd=tmp_path
    )
    code, _, err = await finish()
    assert code == 1
    assert err.strip().splitlines() == [
        "minyi: Telegram refused: Bad webhook: failed to resolve host"
    ]

    no_token = {k: v for k, v in env.items() if k != "MINYI_TELEGRAM_TOKEN"}
    _, finish = await minyi("telegram", "poll", env=no_token, cwd=tmp_path)
    code, _, err = await finish()
    assert code == 2 and err.strip().startswith("minyi: MINYI_TELEGRAM_TOKEN: required")


async def test_poll_answers_a_batch_and_stops_cleanly_on_ctrl_c(
    fake_api: FakeBotApi, tmp_path: Path
) -> None:
    user = TelegramUser()
    batch = [user.text("/start"), user.text("1")]
    fake_api.batches.append(batch)
    process, finish = await minyi(
        "telegram", "poll", env=environment(fake_api, tmp_path), cwd=tmp_path
    )
    for _ in range(600):  # until both turns are answered (or the command died)
        if process.returncode is not None or any("类别" in t for t in fake_api.texts()):
            break
        await asyncio.sleep(0.05)
    process.send_signal(signal.SIGINT)
    code, out, err = await finish()
    assert code == 0, err
    assert "Polling Telegram" in out and "Stopped after 2 updates." in out
    texts = fake_api.texts(user.chat_id)
    assert "您好" in texts[0] and "类别" in texts[-1]
    gets = fake_api.called("getUpdates")
    last = batch[-1]["update_id"]
    assert gets[0].params["allowed_updates"] == ["message", "callback_query"]
    assert "offset" not in gets[0].params and gets[1].params["offset"] == last + 1
    # On the way out the batch is confirmed, so the next run does not fetch it again.
    assert gets[-1].params == {"offset": last + 1, "timeout": 0, "limit": 1}


async def test_poll_refuses_while_a_webhook_is_set(fake_api: FakeBotApi, tmp_path: Path) -> None:
    fake_api.webhook = {"url": "https://minyi.example.org/telegram"}
    _, finish = await minyi("telegram", "poll", env=environment(fake_api, tmp_path), cwd=tmp_path)
    code, _, err = await finish()
    assert code == 1 and "minyi telegram webhook --delete" in err


async def test_polling_uses_the_webhook_path_for_each_update(
    fake_api: FakeBotApi, telegram_settings: Settings, virtual_time: VirtualTime
) -> None:
    """In process, on every backend: a batch with a press, then a duplicate batch."""
    user = TelegramUser()
    async with open_minyi(telegram_settings) as runtime:
        channel = runtime.channels["telegram"]
        assert isinstance(channel, TelegramChannel) and channel.sender is not None
        channel.sender.clock, channel.sender.sleep = virtual_time.clock, virtual_time.sleep
        start = user.text("/start")
        fake_api.batches.append([start])
        stop = asyncio.Event()
        fake_api.on_drained = stop.set
        assert await channel.poll(stop) == 1
        menu, _ = fake_api.keyboard(user.chat_id)
        press = user.press("1", menu)
        fake_api.batches += [[press], [press]]  # Telegram hands the same update out again
        stop.clear()
        assert await channel.poll(stop) == 2
    assert [c.params["callback_query_id"] for c in fake_api.called("answerCallbackQuery")] == [
        press["callback_query"]["id"]
    ] * 2
    assert sum("类别" in t for t in fake_api.texts()) == 1
