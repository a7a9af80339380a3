"""Background jobs, in-process under `minyi serve` or alone under `minyi worker`.

Each job runs when woken (a unit of work just committed something for it) or after its
interval, whichever comes first. A job that fails backs off (doubling up to a minute) and logs;
it never stops the others. The work itself is safe to run in several processes at once.

Stopping lets each job finish the run in hand: cut short, a relay run could leave a batch in the
stream but not marked published (so published again), and a notifier run a message sent but not
recorded (so sent again when its lease ends). Only a run still going after the grace period is
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.escalation import EscalationRules
from conversation.cases.repeats import RepeatRules
from storage.conversations import REDELIVERY_WINDOW, purge_expired
from storage.db import Database
from storage.relay import Relay
from storage.shared import purge_expired_values
from storage.sqlite_loop import off_the_loop
from storage.surveys import expire_surveys
from storage.uow import Units

from . import deadline_watch, repeat_watch
from .notifier import Notifier
from .sms_inbox import SmsInbox

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
# On stop, how long a job's run in hand may take to finish; longer than one outbound call (10 s).
STOP_GRACE = 20.0
STREAM_RETENTION = timedelta(days=7)
# Which job a queue wakes when a unit of work commits rows to it.
WAKES = {"outbox": "outbox-relay", "notifications": "notifier", "sms_replies": "sms-replies"}


@dataclass(frozen=True)
class Job:
    name: str
    every: float  # seconds between runs when nothing wakes it
    run: Callable[[], Awaitable[object]]
    repeat_while_busy: bool = False  # run again at once while it returns a non-zero count
    # Its work grows with the database (scans, sweeps): on SQLite its statements run on the
    # driver's thread rather than the event loop's (storage/sqlite_loop.py).
    long: bool = False


class Wakeups:
    """Wakes the relay and the notifier when a commit wrote work for them, and only then: a
    form step that wrote nothing costs them nothing. Several wake-ups before a job runs are one
    run (an event, not a queue)."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}

    def event(self, job: str) -> asyncio.Event:
        return self.events.setdefault(job, asyncio.Event())

    def committed(self, touched: frozenset[str]) -> None:
        for queue in touched:
            if queue in WAKES:
                self.event(WAKES[queue]).set()


def jobs_for(
    units: Units,
    db: Database,
    relay: Relay,
    notifier: Notifier,
    deadlines: LegalDeadlines,
    sms_inbox: SmsInbox,
    *,
    stream: bool,
    escalation: EscalationRules | None = None,
    repeats: RepeatRules | None = None,
    redelivery: timedelta = REDELIVERY_WINDOW,
) -> tuple[Job, ...]:
    """The background jobs; `stream` when Redis carries the back office's stream (trimmed)."""

    async def expire() -> int:
        async with units() as uow:
            expired = await expire_surveys(uow)
            await uow.commit()
        return expired

    async def purge() -> int:
        return await purge_expired(db, redelivery=redelivery) + await purge_expired_values(db)

    jobs = [
        Job("outbox-relay", 1.0, relay.publish_once, repeat_while_busy=True),
        Job("notifier", 2.0, notifier.run_once, repeat_while_busy=True),
        Job("sms-replies", 2.0, sms_inbox.work_once, repeat_while_busy=True),
        Job(
            "deadlines",
            60.0,
            lambda: deadline_watch.scan(units, deadlines, escalation=escalation),
            long=True,
        ),
        Job(
            "repeats",
            30.0,
            lambda: repeat_watch.scan(
                units,
                repeats or RepeatRules(),
                escalation or EscalationRules(),
                batch=repeat_watch.BATCH_SQLITE if db.is_sqlite else repeat_watch.BATCH,
            ),
            long=True,
        ),
        Job("survey-expiry", 300.0, expire, long=True),
        Job("purge-expired", 600.0, purge, long=True),
    ]
    if stream:
        jobs.append(Job("stream-trim", 300.0, lambda: relay.trim(STREAM_RETENTION)))
    return tuple(jobs)


class Workers:
    """Starts every job as a task and stops them all together, each after its run in hand."""

    def __init__(
        self, jobs: tuple[Job, ...], wakeups: Wakeups, failures: Counter | None = None
    ) -> None:
        self.jobs = jobs
        self.wakeups = wakeups
        self.failures = failures
        self.tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._stopping.clear()
        self.tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self.jobs]

    async def stop(self, grace: float = STOP_GRACE) -> None:
        self._stopping.set()  # a job between runs ends now; one in the middle of a run, after it
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=grace)
            for task in late:
                log.warning("job %s still running after %.0f s; cancelled", task.get_name(), grace)
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def _loop(self, job: Job) -> None:
        # The job's own task: the choice holds for every run and nothing else.
        with off_the_loop() if job.long else contextlib.nullcontext():
            await self._runs(job)

    async def _runs(self, job: Job) -> None:
        wakeup = self.wakeups.event(job.name)
        failures = 0
        while not self._stopping.is_set():
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
                if self.failures is not None:
                    self.failures.labels(job.name).inc()
                await self._pause(wait)
                continue
            if job.repeat_while_busy and result:
                await asyncio.sleep(0)
                continue
            await self._pause(job.every, wakeup)  # the interval, unless kicked (or stopping)
            wakeup.clear()

    async def _pause(self, seconds: float, wakeup: asyncio.Event | None = None) -> None:
        """Wait `seconds`, or less when `wakeup` is set or the workers are stopping."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wakeup is not None:
            waits.append(asyncio.ensure_future(wakeup.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
