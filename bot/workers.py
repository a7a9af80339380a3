"""Background jobs, in-process under `minyi serve` or alone under `minyi worker`.

Each job runs when kicked (a turn or an API call just committed something for it) or after its
interval, whichever comes first. A job that fails backs off (doubling up to a minute) and logs;
it never stops the others. The work itself is safe to run in several processes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from storage.conversations import purge_expired
from storage.relay import Relay
from storage.shared import purge_expired_values
from storage.uow import UnitOfWork

from . import deadline_watch, surveys
from .notify import Notifier
from .runtime import Runtime

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
STREAM_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs when nothing kicks it
    run: Callable[[], Awaitable[object]]
    kickable: bool = False
    repeat_while_busy: bool = False  # run again at once while it returns a non-zero count


def jobs_for(runtime: Runtime) -> tuple[Job, ...]:
    relay = Relay(runtime.db, runtime.cipher, runtime.redis, runtime.settings.stream)
    notifier = Notifier(runtime)

    async def expire_surveys() -> int:
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            expired = await surveys.expire(uow)
            await uow.commit()
        return expired

    async def purge() -> int:
        return await purge_expired(runtime.db) + await purge_expired_values(runtime.db)

    jobs = [
        Job("outbox-relay", 1.0, relay.publish_once, kickable=True, repeat_while_busy=True),
        Job("notifier", 2.0, notifier.run_once, kickable=True, repeat_while_busy=True),
        Job("deadlines", 60.0, lambda: deadline_watch.scan(runtime)),
        Job("survey-expiry", 300.0, expire_surveys),
        Job("purge-expired", 600.0, purge),
    ]
    if runtime.redis is not None:
        jobs.append(Job("stream-trim", 300.0, lambda: relay.trim(STREAM_RETENTION)))
    return tuple(jobs)


class Workers:
    """Starts every job as a task and stops them all together."""

    def __init__(self, runtime: Runtime, jobs: tuple[Job, ...] | None = None) -> None:
        self.runtime = runtime
        self.jobs = jobs if jobs is not None else jobs_for(runtime)
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self.jobs]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _loop(self, job: Job) -> None:
        wakeup = self.runtime.wakeup(job.name) if job.kickable else asyncio.Event()
        failures = 0
        while True:
            try:
                result = await job.run()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = min(job.every * 2**failures, MAX_BACKOFF)
                log.warning(
                    "job %s failed (%s: %s); retrying in %.0f s",
                    job.name,
                    type(exc).__name__,
                    exc,
                    wait,
                )
                self.runtime.metrics.job_failures.labels(job.name).inc()
                await asyncio.sleep(wait)
                continue
            if job.repeat_while_busy and result:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):  # the interval passed without a kick
                await asyncio.wait_for(wakeup.wait(), job.every)
            wakeup.clear()
