"""Redis under Sentinel for the tests, from Debian's redis-server: a primary, a replica and one
Sentinel (quorum 1) in a temporary folder on free ports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from .redis_cluster import _binary, _free_ports

SERVICE = "minyi"


@dataclass
class LocalSentinel:
    folder: Path
    primary: int
    replica: int
    sentinel: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{SERVICE}"

    def current_primary(self) -> int:
        with redis.Redis(port=self.sentinel, socket_timeout=5) as sentinel:
            _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def kill_primary(self) -> int:
        """The primary dies (SIGKILL); the Sentinel sees it down after 1 s and promotes the
        replica. Returns the promoted port once it serves as primary."""
        before = self.current_primary()
        self.processes[0].kill()
        self.processes[0].wait()

        def promoted() -> bool:
            now = self.current_primary()
            if now == before:
                return False
            with redis.Redis(port=now, socket_timeout=2) as node:
                return node.execute_command("ROLE")[0] in (b"master", "master")

        _wait(promoted, "the replica's promotion")
        return self.current_primary()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_sentinel(folder: Path) -> LocalSentinel:
    server = _binary("redis-server")
    folder.mkdir(parents=True, exist_ok=True)
    primary, replica, sentinel_port = _free_ports(3)
    setup = LocalSentinel(folder, primary, replica, sentinel_port)
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
    try:
        for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
            setup.processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        *common,
                        *extra,
                        "--logfile",
                        str(folder / f"redis-{port}.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _wait(lambda: _replicas(primary) == 1, "the replica to follow the primary")
        # Started after the replica is attached, the Sentinel sees it at its first look
        # (otherwise only at the next, 10 s later).
        conf = folder / "sentinel.conf"  # Sentinel rewrites its file: it must be its own
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {folder}\n"
            f"logfile {folder / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        setup.processes.append(
            subprocess.Popen(
                [server, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait(lambda: _known_replicas(sentinel_port), "the Sentinel to know the replica")
    except BaseException:
        setup.stop()
        raise
    return setup


def _replicas(port: int) -> int:
    with redis.Redis(port=port, socket_timeout=2) as node:
        return int(node.info("replication").get("connected_slaves", 0))


def _known_replicas(sentinel_port: int) -> bool:
    with redis.Redis(port=sentinel_port, socket_timeout=2) as sentinel:
        return bool(sentinel.execute_command("SENTINEL", "REPLICAS", SERVICE))


def _wait(check: Callable[[], object], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"Sentinel: waited {seconds} s for {what}")


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[LocalSentinel]:
    setup = start_sentinel(tmp_path / "sentinel")
    try:
        yield setup
    finally:
        setup.stop()
