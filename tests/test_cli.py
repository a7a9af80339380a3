"""The `minyi` command as an operator runs it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from channels.console import chat
from storage import migrate


def minyi(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # this checkout's code
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_db_upgrade_on_the_embedded_default(tmp_path: Path) -> None:
    result = minyi("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"database at revision {migrate.head_revision()}" in result.stdout
    assert (tmp_path / "minyi.db").exists()


def test_a_wrong_setting_stops_with_one_line(tmp_path: Path) -> None:
    result = minyi(
        "serve",
        cwd=tmp_path,
        MINYI_WECHAT_TOKEN="WechatToken0123456789",
        MINYI_WECHAT_APP_ID="wx",
        MINYI_WECHAT_AES_KEY="a" * 42,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "minyi: MINYI_WECHAT_AES_KEY: the EncodingAESKey must be 43 characters, this one has 42"
    ]


async def test_chat_in_the_terminal(sqlite_only: Settings) -> None:
    typed = io.StringIO("1\n5\n楼下烧烤店油烟太大，窗户都打不开\n/quit\n")
    shown = io.StringIO()
    async with open_minyi(sqlite_only) as runtime:
        await chat(runtime.handle, "tester", stdin=typed, stdout=shown)
    output = shown.getvalue()
    assert "1 我要反映" in output and "1 住房与物业" in output and "事情发生在哪里" in output


def test_audit_verify_from_the_command_line(tmp_path: Path) -> None:
    assert minyi("db", "upgrade", cwd=tmp_path).returncode == 0
    result = minyi("audit", "verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0 of 0 cases verified; 0 broken" in result.stdout
    unknown = minyi("audit", "verify", "XF20261130-ZZZZZZ", cwd=tmp_path)
    assert unknown.returncode == 1 and "XF20261130-ZZZZZZ: no such case" in unknown.stdout
