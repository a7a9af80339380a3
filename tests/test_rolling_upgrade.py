"""A rolling upgrade as docs/deploying.md orders it: the release before the newest migration (its
code taken from git) serves citizens; `minyi db upgrade` runs under it; a process of this
release starts beside it; citizens file on both all the while, and every filing is kept. Then
the previous release restarts (a crash, `Restart=on-failure`) on the upgraded schema: it starts
again when the database records that its code still works with it (storage/schema_compat.py),
and refuses in one line when the newest migration is a contract step it cannot survive.

"The release before" is the parent of the commit that added the newest migration file, so
each new migration is checked against the code that runs when it is applied."""

from __future__ import annotations

import asyncio
import io
import os
import re
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
from storage.schema_compat import declared_minimum

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


async def _upgrade_with(code: Path, folder: Path, database: str) -> str:
    """`minyi db upgrade` with `code`; what it printed."""
    upgraded = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "db", "upgrade",
        env=_env(code, database), cwd=folder,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(upgraded.communicate(), 120)
    assert upgraded.returncode == 0, err.decode()
    return out.decode()


async def _refused(code: Path, folder: Path, database: str) -> str:
    """`minyi serve` with `code` stops at once; its one line (besides log lines) saying why."""
    serve = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "serve", "--no-workers", "--port", str(free_port())],
        env=_env(code, database),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 2, (serve.returncode, serve.stderr)
    (line,) = [x for x in serve.stderr.strip().splitlines() if x.startswith("minyi: ")]
    return line


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
    printed = re.search(r"database at revision (\S+)", upgrade.stdout)
    assert printed, upgrade.stdout
    old_head = printed.group(1)
    head = migrate.head_revision()
    assert head is not None and old_head != head, (before, old_head)
    print(f"previous release {before}: schema {old_head} → {head}")
    # What the previous release will find recorded after the upgrade, and whether its code is
    # new enough for it (the migrations up to its head are in this code too).
    script = ScriptDirectory.from_config(migrate.alembic_config())
    floor = declared_minimum(script, head)
    survives = floor in {s.revision for s in script.walk_revisions("base", old_head)}
    knows_the_rule = (old_code / "storage" / "schema_compat.py").is_file()

    if not survives:
        # A contract step the previous release cannot work with: no rolling upgrade from it
        # (docs/deploying.md). What must hold is that it refuses, in one line, once upgraded.
        await _upgrade_with(ROOT, tmp_path, fresh_database)
        line = await _refused(old_code, tmp_path, fresh_database)
        assert f"schema is at {head}" in line and f"code from revision {floor}" in line, line
        print(f"{head} declares min_code_revision {floor}: the previous release refuses it")
        return

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
        out = await _upgrade_with(ROOT, tmp_path, fresh_database)
        assert f"database at revision {head}" in out
        assert f"processes of code revision {floor} or later can work with it" in out
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

        # The previous release restarts on the upgraded schema (what refused before the rule).
        old.stop()
        if knows_the_rule:
            old = Processes(tmp_path, _env(old_code, fresh_database))
            old.start("previous-restarted", "serve", "--no-workers", "--host", "127.0.0.1",
                      "--port", str(old_port))  # fmt: skip
            await old.ready((old_port,))
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://127.0.0.1:{old_port}/readyz") as answer,
            ):
                schema = (await answer.json())["schema"]
            assert schema == {
                "database": head, "code": old_head, "min_code_revision": floor, "state": "newer"
            }  # fmt: skip
            log = (tmp_path / "previous-restarted.log").read_text()
            assert f"schema is at {head}, newer than this code's {old_head}" in log, log
            codes.append(("previous", await file_on(old_port, "citizen-after-restart")))
            old.check_alive()
        else:  # a release from before the rule refuses any other revision, as it always did
            line = await _refused(old_code, tmp_path, fresh_database)
            assert f"schema is at {head}, code needs {old_head}" in line, line
            print(f"previous release {before} predates the compatibility rule: it refuses {head}")
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
