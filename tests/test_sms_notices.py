"""SMS-only notices many at a time: one run reads a lease's jobs in one transaction, sends them
side by side (one case's in order), records them many to a transaction — and none is lost or
sent twice when a run fails before sending or cannot record them together."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import event, select, update

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.citizen_notices import NotSent
from conversation.codes import short_reference
from storage.models import Case, CaseEvent, Delivery, Notification, utcnow
from storage.timeline import Timeline
from storage.uow import UnitOfWork

from .channels.sms_fakes import HTTP_SECRET
from .conftest import connection_cut_once, until_done
from .test_sms_batch import BASE, closed_cases, phone, reply

UNHAPPY = 30  # more SMS than the notifier used to have in flight at once (8)


@dataclass
class Gateway:
    """The `http` SMS gateway, answering no send until `together` are in flight at once (or
    a few seconds have passed: then it refuses them, 503), and recording what it accepted."""

    together: int
    sent: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    open: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = hmac.new(HTTP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["X-Minyi-Signature"] == expected
        self.in_flight += 1
        if self.in_flight >= self.together:
            self.open.set()
        try:
            await asyncio.wait_for(self.open.wait(), timeout=3)
        except TimeoutError:
            return web.json_response({"error": "busy"}, status=503)
        finally:
            self.in_flight -= 1
        self.sent.append(json.loads(body))
        return web.json_response({"accepted": True}, status=202)


@pytest.fixture
async def gateway(aiohttp_server: Any) -> AsyncIterator[tuple[Gateway, str]]:
    fake = Gateway(together=UNHAPPY)
    app = web.Application()
    app.router.add_post("/send", fake.send)
    server: TestServer = await aiohttp_server(app)
    yield fake, str(server.make_url("")).rstrip("/")


def with_gateway(settings: Settings, base: str) -> Settings:
    return settings.replace(sms_provider="http", sms_api_base=base, sms_webhook_secret=HTTP_SECRET)


async def unhappy_ratings(runtime: Minyi) -> list[str]:
    """UNHAPPY cases rated 不满意 by SMS: each has its answer by SMS and a staff alert queued.
    The first case has two more SMS queued after its answer (asked which case, twice)."""
    codes = await closed_cases(runtime, UNHAPPY)
    await runtime.sms_inbox.take(
        [reply(n, f"3 {short_reference(codes[n])}", f"r{n}") for n in range(UNHAPPY)]
    )
    while await runtime.sms_inbox.work_once():
        pass
    async with UnitOfWork(runtime.db, runtime.cipher) as uow:
        case = await uow.cases.by_code(codes[0])
        assert case is not None
        for n in (1, 2):
            payload = {
                "template": "notice",
                "params": {},
                "text_key": "survey.sms.which",
                "values": {"refs": f"第{n}条", "first": "A1B2"},
            }
            await uow.notifications.add(f"later:{n}", "citizen", "sms_followup", case, payload)
        await uow.commit()
    return codes


@contextmanager
def transactions(runtime: Minyi) -> Iterator[list[int]]:
    """Counts the transactions begun on the database while it is held."""
    begun: list[int] = []

    def count(conn: Any) -> None:
        begun.append(1)

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", count)


async def jobs(runtime: Minyi, topic: str = "sms_followup") -> list[Notification]:
    async with runtime.db.session() as session:
        return list(
            await session.scalars(
                select(Notification).where(Notification.topic == topic).order_by(Notification.id)
            )
        )


async def leases_run_out(runtime: Minyi) -> None:
    """As if two minutes passed: every lease has ended."""
    async with runtime.db.session() as session, session.begin():
        await session.execute(
            update(Notification).values(leased_until=utcnow() - timedelta(seconds=1))
        )


def to_each_mobile_once(gateway: Gateway) -> bool:
    mobiles = [sms["to"] for sms in gateway.sent]
    return sorted(mobiles) == sorted([phone(n) for n in range(UNHAPPY)] + [phone(0)] * 2)


async def test_one_run_sends_a_leases_sms_side_by_side_and_records_them_together(
    database_settings: Settings, gateway: tuple[Gateway, str]
) -> None:
    fake, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        codes = await unhappy_ratings(runtime)
        with transactions(runtime) as begun:
            # The gateway answers only once all 30 cases' SMS are in flight together.
            assert await runtime.notifier.run_once() == 2 * UNHAPPY + 2
        # The lease, the SMS read in one and recorded in a few, the staff alerts in three.
        assert len(begun) <= 8, len(begun)
        assert to_each_mobile_once(fake)
        first = [sms["text"] for sms in fake.sent if sms["to"] == phone(0)]
        assert "很抱歉" in first[0] and "第1条" in first[1] and "第2条" in first[2]
        assert {j.status for j in await jobs(runtime)} == {"sent"}
        assert {j.status for j in await jobs(runtime, "unhappy")} == {"skipped"}  # no target
        assert await runtime.notifier.run_once() == 0
        async with runtime.db.session() as session:
            deliveries = list(await session.scalars(select(Delivery)))
            sent = list(
                await session.scalars(
                    select(CaseEvent).where(CaseEvent.type == "notification.sent")
                )
            )
            cases = list(await session.scalars(select(Case).where(Case.id >= BASE)))
            chains = [await Timeline(session).verify(case) for case in cases]
        assert len(deliveries) == len(fake.sent) == UNHAPPY + 2
        assert sorted(e.case_id for e in sent) == sorted(
            [BASE + n for n in range(UNHAPPY)] + [BASE] * 2
        )
        assert all(chain.ok for chain in chains) and len(codes) == UNHAPPY


async def test_a_run_that_fails_before_sending_gives_the_leases_back_and_each_goes_once(
    database_settings: Settings, gateway: tuple[Gateway, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        await unhappy_ratings(runtime)
        texts = runtime.notifier.texts
        monkeypatch.setattr(texts, "_read", connection_cut_once(texts._read))
        with pytest.raises(NotSent):
            await runtime.notifier.run_once()
        assert fake.sent == []
        assert {j.leased_until for j in await jobs(runtime)} == {None}  # given back at once
        await until_done(runtime.notifier.run_once)
        await leases_run_out(runtime)
        await until_done(runtime.notifier.run_once)
    assert to_each_mobile_once(fake)


async def test_sms_that_cannot_be_recorded_together_are_recorded_one_by_one_not_sent_again(
    database_settings: Settings, gateway: tuple[Gateway, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        await unhappy_ratings(runtime)
        texts = runtime.notifier.texts
        together = texts._record_together

        async def refuse_many(plans: Any, outcomes: list[Any]) -> None:
            if len(outcomes) > 1:  # as if one row of them broke a constraint
                raise ValueError("one of them cannot be written")
            await together(plans, outcomes)

        monkeypatch.setattr(texts, "_record_together", refuse_many)
        await runtime.notifier.run_once()
        assert {j.status for j in await jobs(runtime)} == {"sent"}
        # A worker that died holding them, or the lease simply ending: nothing comes back.
        await leases_run_out(runtime)
        assert await runtime.notifier.run_once() == 0
    assert to_each_mobile_once(fake)


async def test_a_worker_that_died_holding_the_lease_lets_each_sms_go_once_after_it(
    database_settings: Settings, gateway: tuple[Gateway, str]
) -> None:
    fake, base = gateway
    async with open_minyi(with_gateway(database_settings, base)) as runtime:
        await unhappy_ratings(runtime)
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:  # claimed, then it died
            assert len(await uow.notifications.lease_due(500, skip_locked=False)) > UNHAPPY
            await uow.commit()
        assert await runtime.notifier.run_once() == 0  # held by the dead worker's lease
        await leases_run_out(runtime)
        await until_done(runtime.notifier.run_once)
        await leases_run_out(runtime)
        assert await runtime.notifier.run_once() == 0
    assert to_each_mobile_once(fake)
