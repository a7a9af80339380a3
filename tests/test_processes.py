"""`minyi serve --processes N`: N servers on one port, a dead one replaced, all stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .conftest import PII_KEY
from .test_cli import minyi

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # a thread that ended since the listing (its children are the process's)
        found |= {int(child) for child in text}
    return found


def _server_children(pid: int) -> set[int]:
    """The serving processes (spawn's resource tracker is a child too)."""
    return {
        child
        for child in _children(pid)
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def test_two_processes_share_the_port_and_stop_together(clean_postgres: str) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    environment |= {
        "PYTHONPATH": str(ROOT),
        "MINYI_DATABASE_URL": clean_postgres,
        "MINYI_PII_KEY": PII_KEY,
    }
    command = [sys.executable, "-m", "bot", "serve", "--processes", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    parent = subprocess.Popen(command, env=environment, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: len(_server_children(parent.pid)) == 2 and _healthy(port))
        first = _server_children(parent.pid)
        # Both accept: with SO_REUSEPORT either may take a connection, and killing one leaves
        # the other answering at once while the parent starts a replacement.
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        _wait(lambda: _healthy(port), 10)
        _wait(lambda: len(_server_children(parent.pid) - {killed}) == 2 and _healthy(port))
        assert _server_children(parent.pid) & first == first - {killed}
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        assert not _healthy(port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_several_processes_refuse_the_embedded_database(tmp_path: Path) -> None:
    result = minyi("serve", "--processes", "2", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("minyi: --processes: several processes need PostgreSQL")
