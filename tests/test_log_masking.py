"""Logs hold no phone, openid or SQL parameter (issue 13, low): the whole formatted record is
masked, tracebacks included, and the engines hide parameters."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import logs
from storage.db import Database

PHONE = "13800138000"
OPENID = "oJ6Fq5B2xY9zK3mN7pQ1rS4tUv8W"


@pytest.fixture
def written() -> io.StringIO:
    """The handler `minyi` installs, writing into a buffer."""
    logs.configure("INFO")
    stream = io.StringIO()
    root = logging.getLogger()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = []


def test_a_traceback_is_masked_like_the_message(written: io.StringIO) -> None:
    log = logging.getLogger("minyi.test")
    try:
        raise ValueError(f"cannot reach +86{PHONE} (openid {OPENID})")
    except ValueError:
        log.exception("turn for %s failed", OPENID)
    output = written.getvalue()
    assert "Traceback" in output and "ValueError" in output
    assert PHONE not in output and OPENID not in output
    assert "+86138****8000" in output and "oJ6F****Uv8W" in output


def test_openids_at_info_are_masked(written: io.StringIO) -> None:
    logging.getLogger("channels.wechat").info("follow from %s", OPENID)
    line = written.getvalue()
    assert OPENID not in line and "oJ6F****Uv8W" in line


async def test_the_engine_hides_sql_parameters(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    try:
        async with db.engine.connect() as conn:
            with pytest.raises(Exception) as failed:
                await conn.execute(text("SELECT * FROM no_such_table WHERE p = :p"), {"p": PHONE})
        assert PHONE not in str(failed.value) and "hidden" in str(failed.value)
    finally:
        await db.dispose()
