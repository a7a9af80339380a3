"""A Redis Cluster for the tests, from Debian's redis-server: three primaries with a replica each,
in a temporary folder on free ports, made with `redis-cli --cluster create` as an operator does."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from .conftest import IN_CI

NODE_TIMEOUT_MS = 2000


def _free_ports(count: int) -> list[int]:
    """Ports free now, whose port + 10000 (the cluster bus) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (Debian: apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


@dataclass
class LocalCluster:
    folder: Path
    ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Minyi's setting: discovery starts at the first three nodes."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def nodes(self) -> list[dict[str, object]]:
        """CLUSTER NODES as seen by a node still alive: port, id, role, its primary's id."""
        port = next(p for p, process in self.processes.items() if process.poll() is None)
        with self.client(port) as node:
            table = node.cluster("nodes")
        return [
            {
                "id": row["node_id"],
                "port": int(address.rsplit(":", 1)[1]),
                "role": "master" if "master" in row["flags"] else "replica",
                "master": row["master_id"],
                "failed": "fail" in row["flags"],
            }
            for address, row in table.items()
        ]

    def primary_of(self, key: str) -> int:
        """The port of the primary that holds `key` now."""
        with self.client(self.ports[0]) as node:
            slot = int(node.execute_command("CLUSTER KEYSLOT", key))
            for start, end, primary, *_ in node.execute_command("CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(primary[1])
        raise AssertionError(f"no primary for slot {slot}")

    def replica_of(self, primary_port: int) -> int:
        rows = self.nodes()
        primary = next(r for r in rows if r["port"] == primary_port)
        return next(
            int(str(r["port"])) for r in rows if r["master"] == primary["id"] and not r["failed"]
        )

    def failover(self, primary_port: int) -> int:
        """`CLUSTER FAILOVER` on the primary's replica; returns the new primary's port once
        every live node agrees and the cluster is whole again."""
        replica = self.replica_of(primary_port)
        self.wait(lambda: self._in_sync(replica), f"the replica on {replica} to be in sync")
        with self.client(replica) as node:
            node.execute_command("CLUSTER FAILOVER")
        self.wait(lambda: self._role(replica) == "master", "the replica to take over")
        self.wait_ok()
        return replica

    def kill(self, port: int) -> None:
        """A primary dies (SIGKILL); its replica is elected after the node timeout."""
        self.processes[port].kill()
        self.processes[port].wait()

    def _in_sync(self, replica: int) -> bool:
        """The replica's link is up and it has everything its primary has sent."""
        with self.client(replica) as node:
            info = node.info("replication")
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    def _role(self, port: int) -> str:
        with self.client(port) as node:
            role = node.execute_command("ROLE")[0]
        return role.decode() if isinstance(role, bytes) else str(role)

    def wait_ok(self) -> None:
        def ok() -> bool:
            for port, process in self.processes.items():
                if process.poll() is not None:
                    continue
                with self.client(port) as node:
                    if node.cluster("info")["cluster_state"] != "ok":
                        return False
            return True

        self.wait(ok, "cluster_state:ok on every node")

    def wait(self, check: object, what: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"Redis Cluster: waited {seconds} s for {what}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_cluster(folder: Path) -> LocalCluster:
    server, cli = _binary("redis-server"), _binary("redis-cli")
    folder.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(folder, _free_ports(6))
    for port in cluster.ports:
        cluster.processes[port] = subprocess.Popen(
            [
                server,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--dir", str(folder),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(folder / f"redis-{port}.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        for port in cluster.ports:
            cluster.wait(lambda p=port: cluster.client(p).ping(), f"redis-server on {port}")
        created = subprocess.run(
            [
                cli, "--cluster", "create",
                *(f"127.0.0.1:{p}" for p in cluster.ports),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        cluster.wait_ok()
        # Every replica attached and in sync before the tests lean on it.
        cluster.wait(
            lambda: sum(r["role"] == "replica" for r in cluster.nodes()) == 3, "three replicas"
        )
        for row in cluster.nodes():
            if row["role"] == "replica":
                port = int(str(row["port"]))
                cluster.wait(lambda p=port: cluster._in_sync(p), f"the replica on {port} in sync")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()
