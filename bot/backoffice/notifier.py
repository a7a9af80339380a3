"""The notifier: leases due notification jobs and hands them to the citizens' and the staff's
senders (citizen_notices.py, staff_alerts.py).

Jobs are leased in a short transaction (one UPDATE … RETURNING) and sent outside any
transaction; a worker that dies mid-send lets its lease run out and the job comes back. One case's citizen messages go out in
the order they were queued ("accepted" before "closed" before the survey question); different
cases go in parallel. The cases (or mobiles) whose leased messages are all SMS-only go together
(`sms_notices.py`: read in one transaction, sent side by side, recorded many to a transaction);
the others one message at a time.
"""

from __future__ import annotations

import asyncio
import logging

from storage.uow import Units

from .citizen_notices import CitizenNotices, NotSent
from .recording import record_surely
from .sms_notices import TEXTED, SmsNotices
from .staff_alerts import StaffAlerts

log = logging.getLogger(__name__)

BATCH = 200
PARALLEL = 8  # cases whose messages go one at a time (through the chat channels), side by side


class Notifier:
    def __init__(
        self, units: Units, citizens: CitizenNotices, texts: SmsNotices, staff: StaffAlerts
    ) -> None:
        self.units = units
        self.citizens = citizens
        self.texts = texts
        self.staff = staff

    async def run_once(self) -> int:
        async with self.units() as uow:
            jobs = await uow.notifications.lease_due(BATCH, skip_locked=uow.db.is_postgres)
            # Messages about one case (or one staff thread before any case) keep their order.
            leased = [
                (
                    job.id,
                    job.audience,
                    job.topic,
                    job.case_id
                    or (
                        f"sms:{job.payload['sender']}"  # one mobile's SMS answers, in order
                        if "sender" in job.payload
                        else f"thread:{job.payload.get('thread')}"
                    ),
                )
                for job in jobs
            ]
            await uow.commit()
        if not leased:
            return 0
        per_case: dict[object, list[tuple[int, str]]] = {}
        for job_id, audience, topic, about in sorted(leased, key=lambda job: job[0]):
            if audience == "citizen":
                per_case.setdefault(about, []).append((job_id, topic))
        texting = [q for q in per_case.values() if all(topic in TEXTED for _, topic in q)]
        one_by_one = [q for q in per_case.values() if not all(topic in TEXTED for _, topic in q)]
        gate = asyncio.Semaphore(PARALLEL)

        async def in_order(queue: list[tuple[int, str]]) -> None:
            async with gate:
                for n, (job_id, topic) in enumerate(queue):
                    try:
                        if topic in TEXTED:
                            await self.texts.send([[job_id]])
                        else:
                            await self.citizens.send(job_id)
                    except NotSent:
                        # Nothing of this one went out: give it and the rest of the case's
                        # queue back, in order, rather than leave them leased for two minutes.
                        await self._release([later for later, _ in queue[n:]])
                        raise

        async def together(queues: list[list[tuple[int, str]]]) -> None:
            try:
                await self.texts.send([[job_id for job_id, _ in queue] for queue in queues])
            except NotSent:
                await self._release([job_id for queue in queues for job_id, _ in queue])
                raise

        staff = [(job_id, topic) for job_id, audience, topic, _ in leased if audience == "staff"]
        await asyncio.gather(
            *(in_order(queue) for queue in one_by_one),
            together(texting) if texting else asyncio.sleep(0),
            self.staff.send(staff) if staff else asyncio.sleep(0),
        )
        return len(leased)

    async def _release(self, job_ids: list[int]) -> None:
        async def release() -> None:
            async with self.units() as uow:
                await uow.notifications.release(job_ids)
                await uow.commit()

        try:
            # The run most likely failed because the database went away: wait for it a little.
            await record_surely(release, f"giving back {len(job_ids)} notification leases")
        except Exception as exc:  # still away: their leases end them
            log.warning("could not give back %d leases (%s)", len(job_ids), type(exc).__name__)
