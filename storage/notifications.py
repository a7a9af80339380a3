"""Notification jobs: written with the change that needs them, leased by the notifier, retried."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Case, Delivery, Notification, utcnow
from .people import insert_ignoring_duplicates, insert_ignoring_duplicates_many
from .timeline import Timeline

log = logging.getLogger(__name__)

# Waits between attempts; after the last one the notification is recorded as failed.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
LEASE = timedelta(seconds=120)


class Notifications:
    def __init__(self, session: AsyncSession, touched: set[str]) -> None:
        self.session = session
        self.touched = touched  # the unit of work's: the notifier is woken after the commit
        self._held: dict[str, dict[str, Any]] | None = None
        self._held_deliveries: dict[tuple[str, str], dict[str, Any]] = {}

    async def add(
        self, key: str, audience: str, topic: str, case: Case | None, payload: dict[str, Any]
    ) -> None:
        """Queue once per key: a repeated cause (a retried API call) queues nothing new."""
        self.touched.add("notifications")
        row: dict[str, Any] = {
            "key": key,
            "audience": audience,
            "topic": topic,
            "case_id": case.id if case else None,
            "payload": payload,
            "next_attempt_at": utcnow(),
            "done_routes": [],
        }
        if self._held is not None:
            self._held.setdefault(key, row)
            return
        await insert_ignoring_duplicates(self.session, Notification, row, ["key"])

    def hold(self) -> None:
        """Keep what is added (and each delivery recorded) from now on for `write_held`: many
        in one INSERT (a batch)."""
        if self._held is None:
            self._held = {}

    async def write_held(self) -> None:
        """Write the held notifications and deliveries in one statement each, each once per
        key as `add` and `record_delivery` do."""
        held, self._held = self._held, None
        deliveries, self._held_deliveries = self._held_deliveries, {}
        if held:
            await insert_ignoring_duplicates_many(
                self.session, Notification, list(held.values()), ["key"]
            )
        if deliveries:
            await insert_ignoring_duplicates_many(
                self.session, Delivery, list(deliveries.values()), ["channel", "message_id"]
            )

    async def lease_due(
        self, limit: int, *, skip_locked: bool, now: datetime | None = None
    ) -> list[Row[Any]]:
        """Take due jobs for LEASE; a worker that dies mid-send lets them come back after it.

        One statement (UPDATE … WHERE id IN (the due ones) RETURNING what the notifier sorts
        them by), rows rather than ORM objects: loading, changing and flushing each job cost
        more than the lease itself. Rows of (id, audience, topic, case_id, payload), by id."""
        now = now or utcnow()
        due = (
            select(Notification.id)
            .where(
                Notification.status == "pending",
                Notification.next_attempt_at <= now,
                or_(Notification.leased_until.is_(None), Notification.leased_until <= now),
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
        )
        if skip_locked:
            due = due.with_for_update(skip_locked=True)
        table = table_of(Notification)
        leased = await self.session.execute(
            update(table)
            .where(table.c.id.in_(due.scalar_subquery()))
            .values(leased_until=now + LEASE)
            .returning(
                table.c.id, table.c.audience, table.c.topic, table.c.case_id, table.c.payload
            )
        )
        return sorted(leased, key=lambda job: int(job.id))

    async def rows(self, job_ids: Collection[int]) -> dict[int, Row[Any]]:
        """Many jobs as rows, by id (those that are gone are missing): (id, key, topic,
        case_id, payload, done_routes). For reading and recording many without ORM objects."""
        if not job_ids:
            return {}
        n = Notification
        found = await self.session.execute(
            select(n.id, n.key, n.topic, n.case_id, n.payload, n.done_routes).where(
                n.id.in_(sorted(set(job_ids)))
            )
        )
        return {job.id: job for job in found}

    async def sent_many(self, sent: Sequence[tuple[int, Sequence[str]]]) -> None:
        """Record many jobs as sent, as `succeeded` does each — (id, its done routes after the
        send) — in one statement (executemany), without loading them."""
        if not sent:
            return
        table = table_of(Notification)
        await self.session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status="sent",
                finished_at=utcnow(),
                leased_until=None,
                attempts=table.c.attempts + 1,
                done_routes=bindparam("b_routes", type_=table.c.done_routes.type),
            ),
            [{"b_id": job_id, "b_routes": list(routes)} for job_id, routes in sent],
        )

    async def get(self, job_id: int) -> Notification | None:
        return await self.session.get(Notification, job_id)

    async def get_many(self, job_ids: Collection[int]) -> dict[int, Notification]:
        """Many jobs in one query, by id (those that are gone are missing)."""
        if not job_ids:
            return {}
        rows = await self.session.scalars(
            select(Notification).where(Notification.id.in_(sorted(set(job_ids))))
        )
        return {job.id: job for job in rows}

    async def release(self, job_ids: Sequence[int]) -> None:
        """Give back leases of jobs this worker did not send (its run failed before them):
        the next run takes them at once instead of after the lease."""
        await self.session.execute(
            update(Notification)
            .where(Notification.id.in_(list(job_ids)), Notification.status == "pending")
            .values(leased_until=None)
        )

    def succeeded(self, job: Notification, route: str | None = None) -> None:
        if route:
            job.done_routes = [*job.done_routes, route]
        job.status, job.finished_at, job.leased_until = "sent", utcnow(), None
        job.attempts += 1

    def postpone(self, job: Notification, until: datetime) -> None:
        """Not now, and not a failure (quiet hours): try again then, without using an attempt."""
        job.next_attempt_at, job.leased_until = until, None

    def skipped(self, job: Notification, why: str) -> None:
        """Nothing to send any more (and nothing went wrong): recorded, not pretended."""
        job.status, job.finished_at, job.leased_until, job.last_error = (
            "skipped",
            utcnow(),
            None,
            why,
        )
        job.attempts += 1

    def retry_later(
        self,
        job: Notification,
        error: str,
        done_routes: Sequence[str] = (),
        wait: timedelta | None = None,
    ) -> bool:
        """Schedule the next attempt; False when attempts are used up (the job is then failed)."""
        job.attempts += 1
        job.last_error = error[:1000]
        job.done_routes = [*job.done_routes, *(r for r in done_routes if r not in job.done_routes)]
        job.leased_until = None
        if job.attempts > len(BACKOFF):
            job.status, job.finished_at = "failed", utcnow()
            return False
        job.next_attempt_at = utcnow() + max(wait or timedelta(0), BACKOFF[job.attempts - 1])
        return True

    async def record_delivery(
        self, channel: str, message_id: str, job: Notification | Row[Any]
    ) -> None:
        row = {
            "channel": channel,
            "message_id": message_id,
            "notification_id": job.id,
            "case_id": job.case_id,
        }
        if self._held is not None:
            self._held_deliveries.setdefault((channel, message_id), row)
            return
        await insert_ignoring_duplicates(self.session, Delivery, row, ["channel", "message_id"])


async def record_report(
    session: AsyncSession,
    timeline: Timeline,
    channel: str,
    message_id: str,
    delivered: bool,
    status: str,
    detail: str,
    at: datetime | None = None,
) -> bool:
    """A provider's delivery report onto the case timeline; False when the message is unknown.

    Taken once per (message, status): a replayed or re-sent report changes nothing. A report
    older than the status already recorded (by the provider's time) is noted but does not
    overwrite it, so a late "delivered" cannot turn a newer "failed" around."""
    delivery = await session.scalar(
        select(Delivery)
        .where(Delivery.channel == channel, Delivery.message_id == message_id)
        .with_for_update()
    )
    if delivery is None:
        return False
    status = status[:40]
    heard = list(delivery.reports or [])
    if status in heard:
        return True
    delivery.reports = [*heard, status]
    when = at or utcnow()
    if delivery.reported_at is not None and when < delivery.reported_at:
        log.info("older %s report %s for %s kept off the timeline", channel, status, message_id)
        return True
    delivery.status, delivery.reported_at = status, when
    if delivery.case_id is not None:
        case = await session.get(Case, delivery.case_id)
        if case is not None:
            data = {
                "message_id": message_id,
                "delivered": delivered,
                "status": status,
                "detail": detail[:200],
            }
            await timeline.append(case, "notification.delivery", channel, data)
    return True


def table_of(model: Any) -> Table:
    """A model's table, typed: for Core statements on it (no ORM objects)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
