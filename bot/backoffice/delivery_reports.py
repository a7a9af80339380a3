"""Delivery reports (a WeChat template job, an SMS receipt) onto the timeline of their case."""

from __future__ import annotations

import logging

from channels.base import DeliveryReport
from storage.notifications import record_report
from storage.uow import Units

log = logging.getLogger(__name__)


class DeliveryReports:
    """What channels call with a provider's report about a message we sent."""

    def __init__(self, units: Units) -> None:
        self.units = units

    async def __call__(self, report: DeliveryReport) -> None:
        async with self.units() as uow:
            known = await record_report(
                uow.session,
                uow.events,
                report.channel,
                report.message_id,
                report.delivered,
                report.status,
                report.detail,
                report.at,
            )
            await uow.commit()
        if not known:
            log.info("delivery report for unknown %s message %s", report.channel, report.message_id)
