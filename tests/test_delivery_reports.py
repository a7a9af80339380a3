"""Delivery reports are taken once per (message, status), and an older status never overwrites
a newer one (issue 13, low): a replayed "delivered" after "failed" no longer flips the timeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.app.wiring import Minyi
from bot.backoffice.delivery_reports import DeliveryReports
from channels.base import DeliveryReport
from storage.models import Delivery
from tests.conftest import Citizen

CODE = re.compile(r"XF\d{8}-[0-9A-Z]{6}")


async def sent_message(runtime: Minyi) -> str:
    found = CODE.search(await Citizen(runtime).file_a_matter())
    assert found
    async with runtime.units() as uow:
        case = await uow.cases.by_code(found.group())
        assert case is not None
        uow.session.add(Delivery(channel="sms", message_id="gw-77", case_id=case.id))
        await uow.commit()
    return found.group()


async def reports_on(runtime: Minyi, code: str) -> list[str]:
    async with runtime.units() as uow:
        case = await uow.cases.by_code(code)
        assert case is not None
        return [
            e.data["status"]
            for e in await uow.events.events(case)
            if e.type == "notification.delivery"
        ]


async def test_a_replayed_report_is_taken_once(runtime: Minyi) -> None:
    code = await sent_message(runtime)
    record = DeliveryReports(runtime.units)
    t0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    failed = DeliveryReport("sms", "gw-77", False, "failed", "switched off", at=t0)
    delivered = DeliveryReport("sms", "gw-77", True, "delivered", at=t0 - timedelta(minutes=1))
    await record(failed)
    await record(failed)  # the gateway sent it twice
    await record(delivered)  # a replay of an older "delivered", after "failed"
    await record(delivered)
    assert await reports_on(runtime, code) == ["failed"]
    async with runtime.db.session() as session:
        row = await session.get(Delivery, 1)
        assert (
            row is not None
            and row.status == "failed"
            and set(row.reports)
            == {
                "failed",
                "delivered",
            }
        )


async def test_a_newer_status_still_moves_on(runtime: Minyi) -> None:
    code = await sent_message(runtime)
    record = DeliveryReports(runtime.units)
    t0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    await record(DeliveryReport("sms", "gw-77", False, "failed", at=t0))
    await record(DeliveryReport("sms", "gw-77", True, "delivered", at=t0 + timedelta(minutes=5)))
    assert await reports_on(runtime, code) == ["failed", "delivered"]
