"""A rolling upgrade as docs/deploying.md orders it: the release before the newest migration (its
code taken from git) serves citizens; `minyi db upgrade` runs under it; a process of this
release starts beside it; citizens file on both all the while, and every filing is kept.

"The release before" is the parent of the commit that added the newest migration file, so
each new migration is checked against the code that runs when it is applied."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from storage import migrate
from storage.models import Case

from .conftest import IN_CI, PG_ADMIN_URL, PII_KEY, run_apart
from .nginx_kit import free_port
from .test_nginx import Processes

ROOT = Path(__file__).resolve().parent.parent
FILING = ("1", "4", "小区门口的路灯坏了一个多月，晚上很黑。", "幸福路12号东门", "跳过", "张三")


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60)


def previous_release(folder: Path) -> tuple[str, Path]:
    """The code from before the newest migration, unpacked into `folder` (no worktree is
    registered: `git archive` only reads)."""
    head = migrate.head_revision()
    script = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head)
    assert script is not None and script.path
    path = Path(script.path).resolve().relative_to(ROOT)
    added = _git("log", "--diff-filter=A", "--format=%H", "--", str(path))
    commits = added.stdout.decode().split()
    if added.returncode != 0 or not commits:
        reason = f"git history with the commit that added {path} is not here"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    before = commits[-1] + "^"
    archive = _git("archive", "--format=tar", before)
    assert archive.returncode == 0, archive.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return before, folder


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"minyi_upgrade_{secrets.token_hex(4)}"

    async def admin(statement: str) -> str | None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()
        return None

    error = run_apart(admin(f'CREATE DATABASE "{name}"'))
    if error:
        if IN_CI:
            pytest.fail(f"CI=true and PostgreSQL is not reachable ({error})")
        pytest.skip(f"PostgreSQL is not reachable ({error})")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    run_apart(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _env(code: Path, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env.update(PYTHONPATH=str(code), MINYI_DATABASE_URL=database, MINYI_PII_KEY=PII_KEY)
    return env


async def file_on(port: int, citizen: str) -> str:
    """A whole filing through the web chat of the process on `port`; the case code."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=jar) as client:
        reply = ""
        for text_ in (*FILING, "13800138000", "1"):
            body = {"text": text_, "session": citizen, "message_id": secrets.token_hex(8)}
            async with client.post("/webchat/messages", json=body) as answer:
                assert answer.status == 200, await answer.text()
                reply = "\n".join(r["text"] for r in (await answer.json())["replies"])
    assert "编号是 " in reply, reply
    return reply.split("编号是 ")[1].split("，")[0]


async def test_the_previous_release_serves_through_the_upgrade_beside_this_one(
    tmp_path: Path, fresh_database: str
) -> None:
    before, old_code = previous_release(tmp_path / "previous")
    upgrade = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "db", "upgrade"],
        env=_env(old_code, fresh_database),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    old_head = upgrade.stdout.strip().rsplit(" ", 1)[-1]
    assert old_head != migrate.head_revision(), (before, old_head)
    print(f"previous release {before}: schema {old_head} → {migrate.head_revision()}")

    old_port, new_port = free_port(), free_port()
    old = Processes(tmp_path, _env(old_code, fresh_database))
    new = Processes(tmp_path, _env(ROOT, fresh_database))
    codes: list[tuple[str, str]] = []  # (which process, code)
    try:
        old.start(
            "previous", "serve", "--no-workers", "--host", "127.0.0.1", "--port", str(old_port)
        )
        await old.ready((old_port,))
        codes.append(("previous", await file_on(old_port, "citizen-before-upgrade-0")))

        # The upgrade runs while the previous release goes on serving.
        filing = asyncio.gather(
            *(file_on(old_port, f"citizen-during-upgrade-{i}") for i in range(3))
        )
        upgraded = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "db", "upgrade",
            env=_env(ROOT, fresh_database), cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(upgraded.communicate(), 120)
        assert upgraded.returncode == 0, err.decode()
        assert f"database at revision {migrate.head_revision()}" in out.decode()
        codes += [("previous", code) for code in await filing]

        new.start("this", "serve", "--no-workers", "--host", "127.0.0.1", "--port", str(new_port))
        await new.ready((new_port,))
        # Both releases side by side on the upgraded schema.
        both = await asyncio.gather(
            *(file_on(old_port, f"citizen-after-upgrade-old-{i}") for i in range(2)),
            *(file_on(new_port, f"citizen-after-upgrade-new-{i}") for i in range(2)),
        )
        codes += [("previous", code) for code in both[:2]] + [("this", c) for c in both[2:]]
        old.check_alive()
    finally:
        new.stop()
        old.stop()

    settings = Settings(database_url=fresh_database, pii_key=PII_KEY)
    async with open_minyi(settings) as minyi, minyi.units() as uow:
        stored = set(await uow.session.scalars(select(Case.code)))
        assert await uow.session.scalar(select(func.count()).select_from(Case)) == len(codes)
        for code in stored:
            case = await uow.cases.by_code(code)
            assert case is not None
            assert uow.cases.contact(case) == ("张三", "+8613800138000")
            assert (await uow.events.verify(case)).ok
    assert stored == {code for _, code in codes}
