"""`minyi staff add|list|disable|passwd` as an operator runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app.settings import Settings
from bot.app.web import create_app
from storage.staff import StaffAccounts

from ..test_cli import minyi
from .conftest import sign_in, uow_of


async def test_accounts_from_the_command_line_sign_in_on_the_desk(
    aiohttp_client: Any, database_settings: Settings, tmp_path: Path
) -> None:
    env = {
        "MINYI_DATABASE_URL": database_settings.database_url,
        "MINYI_PII_KEY": database_settings.pii_key or "",
    }

    def run(*args: str, **more: str) -> Any:
        return minyi("staff", *args, cwd=tmp_path, **env, **more)

    added = run(
        "add",
        "WangFang",
        "--name",
        "王芳",
        "--role",
        "staff",
        "--department",
        "城管局",
        "--wecom",
        "wangfang01",
        MINYI_STAFF_PASSWORD="first password 1",
    )
    assert added.returncode == 0, added.stderr
    assert "added wangfang (王芳, staff)" in added.stdout
    again = run(
        "add", "wangfang", "--name", "另一个", "--role", "staff", MINYI_STAFF_PASSWORD="x" * 12
    )
    assert again.returncode == 2 and "taken" in again.stderr
    short = run("add", "lisi", "--name", "李四", "--role", "leader", MINYI_STAFF_PASSWORD="short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    no_terminal = run("passwd", "wangfang")
    assert no_terminal.returncode == 2 and "MINYI_STAFF_PASSWORD" in no_terminal.stderr

    listing = run("list")
    assert listing.returncode == 0
    assert "wangfang  王芳  staff  城管局      wangfang01  active" in listing.stdout

    client: TestClient = await aiohttp_client(create_app(database_settings, workers=False))
    assert (await sign_in(client, "wangfang", "first password 1")).status == 303
    async with uow_of(client) as uow:
        account = await StaffAccounts(uow.session).by_username("wangfang")
        assert account is not None and account.wecom_userid == "wangfang01"
        assert account.password_hash.startswith("$argon2id$")

    changed = run("passwd", "wangfang", MINYI_STAFF_PASSWORD="second password 2")
    assert changed.returncode == 0, changed.stderr
    assert (await client.get("/desk/cases", allow_redirects=False)).status == 303  # signed out
    assert (await sign_in(client, "wangfang", "first password 1")).status == 401
    assert (await sign_in(client, "wangfang", "second password 2")).status == 303

    disabled = run("disable", "wangfang")
    assert disabled.returncode == 0
    assert (await client.get("/desk/cases", allow_redirects=False)).status == 303
    assert (await sign_in(client, "wangfang", "second password 2")).status == 401
    assert "disabled" in run("list").stdout
    assert run("disable", "nobody").returncode == 2
