"""`minyi serve --processes N`: N server processes on one port, the kernel spreading connections.

Each process is a whole `minyi serve` (its own event loop, pools and background jobs) bound with
SO_REUSEPORT (aiohttp's `reuse_port`), so Linux hands each new connection to one of them. This
parent only starts them, restarts one that dies, and passes SIGTERM/SIGINT on.

Why not gunicorn with aiohttp's worker class: it would add a dependency whose parts we need
(pre-fork, restart, signal relay) are these few lines, and its workers accept from one shared
socket, so one busy event loop keeps taking connections it then serves late; with SO_REUSEPORT
each process has its own accept queue. Both need Linux (or a BSD) for the balancing.

Background jobs run in every process: each process's commits wake its own jobs at once, and the
jobs are safe to run side by side (leases, advisory locks, idempotent writes).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from .settings import Settings, SettingsError

log = logging.getLogger("minyi")

RESTART_PAUSE = 1.0  # between a process dying and its replacement, so a crash loop is slow


def check_processes(settings: Settings, processes: int) -> None:
    """Refuse what several processes cannot share, naming the setting."""
    if processes < 1:
        raise SettingsError("--processes: at least 1")
    if processes > 1 and settings.database_url.startswith("sqlite"):
        raise SettingsError(
            "--processes: several processes need PostgreSQL (MINYI_DATABASE_URL); the embedded "
            "SQLite database has one writer and keeps conversations' locks in its one process"
        )


def _serve_one(settings: Settings, host: str, port: int, workers: bool) -> None:
    from aiohttp import web

    from . import logs
    from .loop import new_event_loop
    from .web import KEEPALIVE_SECONDS, create_app

    logs.configure(settings.log_level, settings.log_format)
    app = create_app(settings, workers=workers)
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
        reuse_port=True,
        keepalive_timeout=KEEPALIVE_SECONDS,
        loop=new_event_loop(),
    )


def serve_processes(
    settings: Settings, host: str, port: int, processes: int, *, workers: bool
) -> None:
    """Run `processes` servers on host:port until SIGTERM or SIGINT; restart any that dies."""
    check_processes(settings, processes)
    context = multiprocessing.get_context("spawn")  # nothing inherited half-built
    stopping = False

    def start() -> BaseProcess:
        child = context.Process(
            target=_serve_one, args=(settings, host, port, workers), name="minyi-serve"
        )
        child.start()
        return child

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = [start() for _ in range(processes)]
    log.info("minyi serving on %s:%d in %d processes", host, port, processes)
    while not stopping:
        time.sleep(0.2)
        for i, child in enumerate(children):
            if not child.is_alive() and not stopping:
                log.error("server process %s exited with %s; restarting", child.pid, child.exitcode)
                time.sleep(RESTART_PAUSE)
                children[i] = start()
    for child in children:
        child.terminate()  # SIGTERM: aiohttp shuts down, each job finishes its run in hand
    for child in children:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()
