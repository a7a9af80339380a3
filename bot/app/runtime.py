"""Everything a Minyi process holds open, built once from settings and closed in one place."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from bot.app.channel_setup import build_channels
from bot.app.metrics import Metrics
from bot.app.settings import Settings, SettingsError
from bot.backoffice.duty_group import StaffDesk
from bot.backoffice.survey_replies import SurveyReplies
from channels.base import Channel, DeliveryReport, Services, SharedCache
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.surveys import SurveyRules
from conversation.engine import Engine
from conversation.messages import Inbound, Reply
from conversation.office import OfficeConfig, load_office
from storage import migrate
from storage.conversations import (
    ConversationStoreBase,
    DatabaseConversationStore,
    RedisConversationStore,
)
from storage.crypto import PiiCipher, key_file_for, load_or_create_key_file, parse_key
from storage.db import Database
from storage.keys import Keys
from storage.mailbox import DatabaseMailbox
from storage.notifications import record_report
from storage.shared import DatabaseShared, RedisShared
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cipher: PiiCipher
    redis: Redis | None
    keys: Keys
    http: aiohttp.ClientSession
    office: OfficeConfig
    deadlines: LegalDeadlines
    store: ConversationStoreBase
    engine: Engine
    metrics: Metrics
    shared: SharedCache
    channels: dict[str, Channel]
    surveys: SurveyRules = field(default_factory=SurveyRules)
    desk: StaffDesk | None = None
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The engine, measured. Errors propagate: each channel knows how to apologise."""
        started = time.perf_counter()
        try:
            if self.desk is not None and await self.desk.relay_citizen(inbound):
                return []  # a staff member has this conversation: the words went to them
            replies = await self.engine.handle(inbound)
            self.kick()  # the turn may have queued events and alerts
            return replies
        except Exception:
            self.metrics.turn_errors.labels(inbound.channel).inc()
            raise
        finally:
            self.metrics.messages.labels(inbound.channel).inc()
            self.metrics.turn_seconds.labels(inbound.channel).observe(time.perf_counter() - started)

    def wakeup(self, job: str) -> asyncio.Event:
        return self.wakeups.setdefault(job, asyncio.Event())

    def kick(self) -> None:
        """Wake the in-process workers now rather than at their next interval."""
        for event in self.wakeups.values():
            event.set()

    async def record_delivery_report(self, report: DeliveryReport) -> None:
        async with UnitOfWork(self.db, self.cipher) as uow:
            known = await record_report(
                uow.session,
                uow.events,
                report.channel,
                report.message_id,
                report.delivered,
                report.status,
                report.detail,
            )
            await uow.commit()
        if not known:
            log.info("delivery report for unknown %s message %s", report.channel, report.message_id)


def pii_cipher(settings: Settings, db: Database) -> PiiCipher:
    if settings.pii_key:
        try:
            return PiiCipher(parse_key(settings.pii_key))
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    database = db.url.database
    if not db.is_sqlite or not database or database == ":memory:":
        raise SettingsError("MINYI_PII_KEY: required unless the database is a SQLite file")
    return PiiCipher(load_or_create_key_file(key_file_for(Path(database).resolve())))


async def prepare_schema(settings: Settings, db: Database) -> None:
    """The embedded default migrates itself; a shared database is migrated by `minyi db upgrade`."""
    if db.is_sqlite:
        await migrate.upgrade(db)
        return
    current, head = await migrate.current_revision(db), migrate.head_revision()
    if current != head:
        raise SettingsError(
            f"MINYI_DATABASE_URL: schema is at {current or 'nothing'}, code needs {head}; "
            "run `minyi db upgrade` first"
        )


@asynccontextmanager
async def open_runtime(
    settings: Settings, channels: dict[str, Channel] | None = None
) -> AsyncIterator[Runtime]:
    """Open everything; `channels` are the app's (built with its routes), else built here."""
    db = Database(settings.database_url)
    redis: Redis | None = None
    http: aiohttp.ClientSession | None = None
    started: list[Channel] = []
    try:
        cipher = pii_cipher(settings, db)
        await prepare_schema(settings, db)
        office = load_office(settings.office_config)
        tz = settings.tz()
        keys = Keys(settings.redis_prefix)
        lifetime = timedelta(hours=settings.session_hours)
        deadlines = LegalDeadlines(tz, office.deadlines)
        store: ConversationStoreBase
        if settings.redis_url:
            redis = Redis.from_url(
                settings.redis_url,
                socket_timeout=5,
                socket_connect_timeout=3,
                health_check_interval=30,
            )
            store = RedisConversationStore(
                db, cipher, tz, redis, keys, lifetime=lifetime, deadlines=deadlines
            )
        else:
            store = DatabaseConversationStore(
                db, cipher, tz, lifetime=lifetime, deadlines=deadlines
            )
        engine = Engine(
            store,
            office,
            deadlines,
            tz=tz,
            session_lifetime=lifetime,
            rating_scale=settings.survey_scale,
        )
        http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        shared: SharedCache = RedisShared(redis, keys) if redis is not None else DatabaseShared(db)
        metrics = Metrics()
        holder: list[Runtime] = []

        async def handle(inbound: Inbound) -> list[Reply]:
            return await holder[0].handle(inbound)

        if channels is None:
            channels = build_channels(settings, handle)
        runtime = Runtime(
            settings=settings,
            db=db,
            cipher=cipher,
            redis=redis,
            keys=keys,
            http=http,
            office=office,
            deadlines=deadlines,
            store=store,
            engine=engine,
            metrics=metrics,
            shared=shared,
            channels=channels,
            surveys=SurveyRules.from_setting(
                settings.survey_scale, settings.survey_days, settings.survey_quiet_hours
            ),
        )
        holder.append(runtime)
        if isinstance(sms := channels.get("sms"), SmsChannel):
            sms.on_reply = SurveyReplies(runtime)  # SMS replies answer surveys, not conversations
        telegram = channels.get("telegram")
        if isinstance(telegram, TelegramChannel) and telegram.staff_chat:
            runtime.desk = StaffDesk(runtime, telegram)
            telegram.on_staff = runtime.desk.act
        services = Services(
            http=http,
            shared=shared,
            rejected=metrics.reject,
            delivery_report=runtime.record_delivery_report,
            mailbox=DatabaseMailbox(db, cipher),
            observed=metrics.observe,
        )
        for channel in channels.values():
            await channel.start(services)
            started.append(channel)
        yield runtime
    finally:
        for channel in reversed(started):
            try:
                await channel.close()
            except Exception:
                log.exception("closing channel %s failed", channel.name)
        if http is not None:
            await http.close()
        if redis is not None:
            await redis.aclose()
        await db.dispose()
