"""A PostgreSQL of the soak's own, started from the Debian binaries in a temporary directory, so
that the soak can restart it mid-burst without ever touching a shared server.

    with OwnPostgres() as pg:      # initdb, start on a free port, create database `soak`
        pg.url                     # postgresql+asyncpg://postgres@127.0.0.1:<port>/soak
        pg.restart()               # pg_ctl restart -m fast: every connection is cut
    # stopped and its directory removed, also after a failure

PostgreSQL refuses to run as root; when the soak runs as root the cluster belongs to the
`postgres` user (`runuser`), which is what the Debian packages create.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnPostgres:
    def __init__(self, database: str = "soak") -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("soak: no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        self.database = database
        self.port = _free_port()
        self.home = Path(tempfile.mkdtemp(prefix="minyi-soak-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise SystemExit(f"soak: {' '.join(command[:2])} failed: {result.stderr.strip()}")

    def _ctl(self, action: str) -> None:
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            action,
        )

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self._ctl("start")
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            self.database,
        )

    def restart(self) -> float:
        """Restart the server (fast: open connections are cut); seconds it took."""
        began = time.monotonic()
        self._ctl("restart")
        return time.monotonic() - began

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop")

    def __enter__(self) -> OwnPostgres:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
