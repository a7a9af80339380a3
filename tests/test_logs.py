"""Log lines: plain for people, JSON lines for collectors; phones masked in either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import logs
from bot.app.settings import SettingsError, load_settings
from tests.test_cli import minyi


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger as `configure` leaves it, writing into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def _configure(fmt: str, stream: io.StringIO) -> None:
    logs.configure("INFO", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def test_json_lines_carry_one_field_per_attribute_with_phones_masked(
    captured: io.StringIO,
) -> None:
    _configure("json", captured)
    log = logging.getLogger("minyi.sms")
    log.info("reply from %s to case %s", "+8613800138000", "XF20261122-7K3M9Q")
    log.warning(
        "delivery failed",
        extra={
            "case": "XF20261122-7K3M9Q",
            "to": "13912345678",
            "attempt": 3,
            "tags": ["13900001111"],
        },
    )
    try:
        raise RuntimeError("gateway said no to +8613800138000")
    except RuntimeError:
        log.exception("send failed")

    lines = captured.getvalue().splitlines()
    assert len(lines) == 3  # one record, one line: a traceback is inside its JSON string
    first, second, third = (json.loads(line) for line in lines)
    assert list(first)[:3] == ["time", "level", "logger"]
    assert first["time"].endswith("Z") and len(first["time"]) == len("2026-11-30T10:00:00.000Z")
    assert first["level"] == "INFO" and first["logger"] == "minyi.sms"
    assert first["message"] == "reply from +86138****8000 to case XF20261122-7K3M9Q"
    assert isinstance(first["process"], int)
    assert second["level"] == "WARNING" and second["message"] == "delivery failed"
    assert second["case"] == "XF20261122-7K3M9Q" and second["attempt"] == 3
    assert second["to"] == "139****5678" and second["tags"] == ["139****1111"]
    assert third["level"] == "ERROR" and "RuntimeError" in third["exc_info"]
    assert "+86138****8000" in third["exc_info"]
    assert "13800138000" not in captured.getvalue() and "13912345678" not in captured.getvalue()


def test_text_lines_stay_as_they_were(captured: io.StringIO) -> None:
    _configure("text", captured)
    logging.getLogger("minyi").info("reply from %s", "+8613800138000")
    line = captured.getvalue().strip()
    assert line.endswith("INFO minyi: reply from +86138****8000")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_format_setting_is_checked() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"MINYI_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="MINYI_LOG_FORMAT: 'xml' is not one of text, json"):
        load_settings({"MINYI_LOG_FORMAT": "xml"})


def test_the_command_logs_json_lines(tmp_path: Path) -> None:
    """A real process: `minyi audit verify` on a new SQLite file creates its key and says so."""
    result = minyi("audit", "verify", cwd=tmp_path, MINYI_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any("created PII key file" in r["message"] for r in records), records
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
