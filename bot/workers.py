"""Background jobs, in-process under `minyi serve` or alone under `minyi worker`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storage.conversations import purge_expired

from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs
    run: Callable[[Runtime], Awaitable[object]]


async def _purge(runtime: Runtime) -> object:
    return await purge_expired(runtime.db)


JOBS: tuple[Job, ...] = (Job("purge-expired-conversations", 600.0, _purge),)


async def _loop(runtime: Runtime, job: Job) -> None:
    while True:
        try:
            await job.run(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed; it runs again in %.0f s", job.name, job.every)
        await asyncio.sleep(job.every)


class Workers:
    """Starts every job as a task and stops them all together."""

    def __init__(self, runtime: Runtime, jobs: tuple[Job, ...] = JOBS) -> None:
        self.runtime = runtime
        self.jobs = jobs
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(_loop(self.runtime, job), name=job.name) for job in self.jobs
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
