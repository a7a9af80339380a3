"""The composition root: builds every service from settings, each given only what it uses, and
closes everything in one place.

Order of construction is the dependency order — storage, then the engine and what citizens and
staff send in (survey replies, the duty group), then the channels (given those), then what
reaches people through the channels (notices, alerts), then the background jobs — so no service
is ever completed after it was made, and nothing needs the whole of `Minyi`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis

from bot.backoffice.citizen_notices import CitizenNotices
from bot.backoffice.delivery_reports import DeliveryReports
from bot.backoffice.media_fetch import MediaFetch
from bot.backoffice.notifier import Notifier
from bot.backoffice.photo_sweep import PhotoSweep
from bot.backoffice.reach import CitizenReach
from bot.backoffice.sms_conversation import SmsConversation
from bot.backoffice.sms_inbox import SmsInbox
from bot.backoffice.sms_notices import SmsNotices
from bot.backoffice.staff_alerts import StaffAlerts
from bot.backoffice.staff_directory import StaffDirectory
from bot.backoffice.staff_threads import StaffThreads
from bot.backoffice.survey_replies import SurveyReplies
from bot.backoffice.workers import Job, Wakeups, jobs_for
from channels.base import (
    Channel,
    Handler,
    MediaSource,
    Parts,
    PhoneTexting,
    Services,
    SharedCache,
    Throttled,
)
from channels.client import Clients
from channels.registry import PLUGINS
from channels.staff import StaffTarget
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.surveys import SurveyRules
from conversation.catalog import Catalog
from conversation.engine import Engine
from conversation.messages import Inbound, Reply
from conversation.office import OfficeConfig, load_office
from storage import keycheck, measures, migrate, redis_connect, schema_compat
from storage.conversations import (
    ConversationStoreBase,
    DatabaseConversationStore,
    RedisConversationStore,
)
from storage.crypto import (
    PiiCipher,
    PiiKeyError,
    key_file_for,
    new_key,
    parse_key,
    read_key_file,
    write_key_file,
)
from storage.db import Database
from storage.files import FileStore, LocalFileStore, SealedFileStore, files_dir_for
from storage.keycheck import KeyMismatch, KeySource
from storage.keys import Keys
from storage.live import LocalBus, RedisBus
from storage.mailbox import DatabaseMailbox
from storage.models import utcnow
from storage.pending import RedisPending
from storage.photos import PhotoKeeper
from storage.ratelimit import (
    LocalRateLimit,
    RateLimit,
    RedisRateLimit,
    SenderLimited,
    SenderRate,
    retry_after,
)
from storage.relay import Relay
from storage.s3_files import S3FileStore
from storage.schema_compat import SchemaState
from storage.shared import DatabaseShared, RedisShared
from storage.uow import Committed, Units

from .metrics import Metrics
from .settings import Settings, SettingsError

log = logging.getLogger(__name__)

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)


@dataclass
class Minyi:
    """Everything one process built: what the web app, the CLI and the tests reach for. No
    service is given this; each got its own parts when it was made. `http`, the one client
    session, exists while it runs."""

    settings: Settings
    db: Database
    cipher: PiiCipher
    key_source: KeySource
    units: Units
    redis: Redis | None
    keys: Keys
    office: OfficeConfig
    deadlines: LegalDeadlines
    surveys: SurveyRules
    store: ConversationStoreBase
    engine: Engine
    metrics: Metrics
    shared: SharedCache
    channels: dict[str, Channel]
    staff_targets: tuple[StaffTarget, ...]
    notifier: Notifier
    survey_replies: SurveyReplies
    sms_inbox: SmsInbox
    staff_threads: StaffThreads
    wakeups: Wakeups
    live: LocalBus
    jobs: tuple[Job, ...]
    handle: Handler
    limits: RateLimit
    clients: Clients
    files: SealedFileStore
    photos: PhotoKeeper
    http: aiohttp.ClientSession | None = None


def measured(engine: Engine, metrics: Metrics) -> Handler:
    """The inbound pipeline every channel calls: metrics around the engine (which hands the
    message to a staff member instead, when one has the conversation)."""

    # Each channel's counter and histogram, looked up once: prometheus_client's `labels()`
    # takes a lock and builds a key on every call.
    children: dict[str, tuple[Counter, Histogram]] = {}

    async def handle(inbound: Inbound) -> list[Reply]:
        started = time.perf_counter()
        turned_away = False
        try:
            return await engine.handle(inbound)
        except SenderLimited:
            turned_away = True  # no turn: `limited` answers it, as it does without Redis
            raise
        except Exception:
            # Errors propagate: each channel knows how to apologise.
            metrics.turn_errors.labels(inbound.channel).inc()
            raise
        finally:
            if not turned_away:
                channel = inbound.channel
                kept = children.get(channel)
                if kept is None:
                    kept = children[channel] = (
                        metrics.messages.labels(channel),
                        metrics.turn_seconds.labels(channel),
                    )
                kept[0].inc()
                kept[1].observe(time.perf_counter() - started)

    return handle


def limited(
    handle: Handler,
    limits: RateLimit,
    rate: tuple[int, int],
    pseudonym: Callable[[str, str], str],
    catalog: Catalog,
    counting: Callable[[SenderRate], AbstractContextManager[None]] | None = None,
) -> Handler:
    """At most `rate` turns per sender (MINYI_RATE_SENDER), across processes when Redis is
    there: a flood from one chat cannot take the engine from everyone else.

    With the Redis conversation store (`counting`) the turn is counted by the script that takes
    its conversation's lock, which saves a round trip; its counter carries the conversation's
    hash tag and so names no one the conversation's own keys do not. Otherwise `limits` counts
    it, under a keyed hash of the sender."""

    def throttled(wait: float) -> Throttled:
        return Throttled(
            retry_after(wait),
            catalog.text("zh", "rate_limited"),
            catalog.text("en", "rate_limited"),
        )

    async def handle_limited(inbound: Inbound) -> list[Reply]:
        if counting is not None:
            asked = SenderRate(inbound.conversation_key, inbound.message_id, *rate)
            try:
                with counting(asked):
                    return await handle(inbound)
            except SenderLimited as exc:
                raise throttled(exc.retry_after) from None
        who = pseudonym(f"{inbound.channel}:{inbound.sender}", "rate")
        wait = await limits.hit(f"sender:{who}", *rate, once=inbound.message_id)
        if wait is not None:
            raise throttled(wait)
        return await handle(inbound)

    return handle_limited


def after_commit(wakeups: Wakeups, live: LocalBus) -> Committed:
    """What a commit sets going: the workers whose queues it wrote to, and the live views of the
    staff threads it changed."""

    def committed(touched: frozenset[str]) -> None:
        wakeups.committed(touched)
        for name in touched:
            if name.startswith("thread:"):
                live.publish("desk", name)

    return committed


def file_store(settings: Settings, cipher: PiiCipher) -> SealedFileStore:
    """Where photos are kept, each sealed with the personal-data key: an S3-compatible bucket
    when one is set, else MINYI_FILES_DIR, or the default beside the database."""
    inner: FileStore
    if settings.files_s3_bucket:
        inner = S3FileStore(
            settings.files_s3_bucket,
            endpoint_url=settings.files_s3_endpoint,
            region=settings.files_s3_region,
            access_key=settings.files_s3_access_key or "",
            secret_key=settings.files_s3_secret_key or "",
            prefix=settings.files_s3_prefix,
        )
    elif settings.files_dir:
        inner = LocalFileStore(Path(settings.files_dir).resolve())
    else:
        inner = LocalFileStore(files_dir_for(settings.database_url))
    return SealedFileStore(inner, cipher)


def pii_cipher(settings: Settings, db: Database) -> tuple[PiiCipher, KeySource]:
    """The cipher and where its key came from. A missing key file gets a new key here, but the
    file is written only once the database has shown it holds nothing encrypted (`running`)."""
    old: bytes | None = None
    try:
        if settings.pii_key_old:
            try:
                old = parse_key(settings.pii_key_old)
            except PiiKeyError:
                raise SettingsError(
                    "MINYI_PII_KEY_OLD: must be 32 random bytes in base64 or hex, like MINYI_PII_KEY"
                ) from None
        if settings.pii_key:
            key = parse_key(settings.pii_key)
            return PiiCipher(key, old), KeySource("MINYI_PII_KEY", key)
        database = db.url.database
        if not db.is_sqlite or not database or database == ":memory:":
            raise SettingsError("MINYI_PII_KEY: required unless the database is a SQLite file")
        path = key_file_for(Path(database).resolve())
        found = read_key_file(path)
    except PiiKeyError as exc:
        raise SettingsError(str(exc)) from None
    if found is not None:
        return PiiCipher(found, old), KeySource(str(path), found)
    key = new_key()
    return PiiCipher(key, old), KeySource(str(path), key, new_file=path)


async def check_key(db: Database, cipher: PiiCipher, source: KeySource) -> None:
    """Refuse a key that is not the database's, and write a new key file once it is accepted."""
    try:
        await keycheck.guard(db, cipher, source)
    except KeyMismatch as exc:
        raise SettingsError(str(exc)) from None
    if source.new_file is not None and not source.new_file.exists():
        try:
            write_key_file(source.new_file, source.key)
        except FileExistsError:
            raise SettingsError(
                f"{source.new_file}: another process made the key file at the same moment; "
                "start again"
            ) from None


async def prepare_schema(db: Database, *, exact: bool = False) -> SchemaState:
    """Refuse a schema this code cannot work with, in one line.

    The embedded default migrates itself; a shared database is migrated by `minyi db upgrade`.
    A newer schema is accepted when the database records that code of this revision still
    works with it (a rolling upgrade: storage/schema_compat.py). `exact` asks for this code's
    own revision: for maintenance that rewrites every table it knows (key rotation), which
    would miss what a newer schema added."""
    state = await schema_compat.inspect_schema(db)
    if db.is_sqlite and state.verdict in ("empty", "older"):
        await migrate.upgrade(db)
        state = await schema_compat.inspect_schema(db)
    if exact and state.verdict == "newer":
        raise SettingsError(
            f"MINYI_DATABASE_URL: schema is at {state.database}, newer than this code "
            f"({state.code}); run this command with the newer release"
        )
    if not state.works:
        raise SettingsError(f"MINYI_DATABASE_URL: {state.problem}")
    if state.verdict == "newer":
        log.warning(
            "schema is at %s, newer than this code's %s; it works with code from %s on, so "
            "this process runs on it: roll out the newer release",
            state.database,
            state.code,
            state.min_code,
        )
    return state


def build_minyi(settings: Settings, *, replace_channels: dict[str, Channel] | None = None) -> Minyi:
    """Build every service; nothing is connected or started yet (see `running`).

    `replace_channels` stands in for the channels built from settings (tests and benchmarks
    that bring their own channel)."""
    db = Database(settings.database_url)
    cipher, key_source = pii_cipher(settings, db)
    office = load_office(settings.office_config)
    tz = settings.tz()
    keys = Keys(settings.redis_prefix)
    redis: Redis | None = None
    if settings.redis_url:
        redis = redis_connect.connect(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30
        )
    wakeups = Wakeups()
    live: LocalBus = RedisBus(redis, keys) if redis is not None else LocalBus()
    committed = after_commit(wakeups, live)
    units = Units(db, cipher, committed, tz)
    lifetime = timedelta(hours=settings.session_hours)
    redelivery = timedelta(seconds=settings.redelivery_seconds)
    # The law's limits and the office's stages: filing sets the first, the watch raises them.
    deadlines = LegalDeadlines(tz, office.deadlines)
    store: ConversationStoreBase
    if redis is not None:
        store = RedisConversationStore(
            db,
            cipher,
            tz,
            redis,
            keys,
            lifetime=lifetime,
            redelivery=redelivery,
            committed=committed,
            deadlines=deadlines,
        )
    else:
        store = DatabaseConversationStore(
            db,
            cipher,
            tz,
            lifetime=lifetime,
            redelivery=redelivery,
            committed=committed,
            deadlines=deadlines,
        )
    shared: SharedCache = RedisShared(redis, keys) if redis is not None else DatabaseShared(db)
    surveys = SurveyRules.from_setting(
        settings.survey_scale, settings.survey_days, settings.survey_quiet_hours
    )
    engine = Engine(
        store,
        office,
        deadlines,
        tz=tz,
        session_lifetime=lifetime,
        rating_scale=settings.survey_scale,
    )
    metrics = Metrics()
    files = file_store(settings, cipher)
    photos = PhotoKeeper(files, units)
    limits: RateLimit = RedisRateLimit(redis, keys) if redis is not None else LocalRateLimit()
    handle = limited(
        measured(engine, metrics),
        limits,
        settings.rate_sender,
        cipher.digest,
        office.catalog,
        store.counting if isinstance(store, RedisConversationStore) else None,
    )
    # What arrives on the channels besides citizens' turns: SMS answers to surveys, and what
    # staff do on their front ends (the duty group, the WeCom app).
    # A text that is no survey reply is a turn of the conversation, answered by SMS.
    sms_conversation = SmsConversation(units, handle, limits, settings.rate_sms_answers, office, tz)
    survey_replies = SurveyReplies(
        units, office.catalog, surveys, deadlines, tz, otherwise=sms_conversation
    )
    # A push of SMS replies is kept first and acknowledged; its replies are worked through after.
    sms_inbox = SmsInbox(db, cipher, survey_replies, committed, survey_replies.many)
    directory = StaffDirectory(units)
    staff_threads = StaffThreads(units, shared, office, tz, engine, directory)

    parts = Parts(
        handle=handle,
        text=lambda key: office.catalog.text("zh", key),
        sms_replies=sms_inbox.take,
        staff_actions=staff_threads.act,
        staff_roster=directory.roster,
        pseudonym=cipher.digest,
    )
    channels: dict[str, Channel] = {}
    staff_targets: list[StaffTarget] = []
    for plugin in PLUGINS:
        config = settings.channel(plugin.name)
        if config is None:
            continue
        built = plugin.build(config, parts)
        if built.channel is not None:
            channels[built.channel.name] = built.channel
        if built.staff is not None:
            staff_targets.append(built.staff)
    if replace_channels is not None:
        channels = replace_channels

    # What reaches people through the channels.
    reach = CitizenReach(channels)
    phone = next((c for c in channels.values() if isinstance(c, PhoneTexting)), None)
    # Without a channel that texts phones, or (for template providers) an approved template for
    # it, no 验证码 can be sent: the 查询码 is then the only proof offered.
    engine.sms_proof = phone is not None and phone.has_template("verification")
    citizens = CitizenNotices(
        units,
        reach,
        office.catalog,
        tz,
        invitation=engine.rating_invitation,
        expect_rating=engine.expect_rating,
        hotline=office.hotline,
    )
    texts = SmsNotices(units, reach, office.catalog, tz, surveys, phone)
    staff = StaffAlerts(
        units, staff_targets, office, tz, reach, shared, desk_url=settings.public_url or ""
    )
    notifier = Notifier(units, citizens, texts, staff)
    relay = Relay(db, cipher, redis, settings.stream)
    jobs: tuple[Job, ...] = jobs_for(
        units,
        db,
        relay,
        notifier,
        deadlines,
        sms_inbox,
        stream=redis is not None,
        escalation=office.escalation,
        repeats=office.repeats,
        redelivery=store.redelivery,
    )
    # Photos sent on WeChat or Telegram, fetched while the provider keeps them.
    sources = {c.name: c for c in channels.values() if isinstance(c, MediaSource)}
    jobs += (Job("media-fetch", 15.0, MediaFetch(units, sources, photos, utcnow).run_once),)
    # Uploads no case took, deleted once their conversation has ended (docs/photos.md).
    sweep = PhotoSweep(
        units,
        files,
        store,
        age=timedelta(hours=settings.photo_orphan_hours),
        lifetime=lifetime,
        clock=utcnow,
    )
    jobs += (Job("photo-sweep", 600.0, sweep.run_once, repeat_while_busy=True, long=True),)

    async def keep_rollup_up() -> int:
        """Old days counted into the measures' daily rollup before anyone asks (measures.md)."""
        async with units() as uow:
            left = await measures.keep_rollup_up(
                uow.session,
                now=utcnow(),
                repeat_days=office.repeats.window_days,
                tz=tz,
                subtrees=office.departments.subtrees(),
            )
            await uow.commit()
        return left

    jobs += (Job("stats-rollup", 3600.0, keep_rollup_up, repeat_while_busy=True, long=True),)

    return Minyi(
        settings=settings,
        db=db,
        cipher=cipher,
        key_source=key_source,
        units=units,
        redis=redis,
        keys=keys,
        office=office,
        deadlines=deadlines,
        surveys=surveys,
        store=store,
        engine=engine,
        metrics=metrics,
        shared=shared,
        channels=channels,
        staff_targets=tuple(staff_targets),
        notifier=notifier,
        survey_replies=survey_replies,
        sms_inbox=sms_inbox,
        staff_threads=staff_threads,
        wakeups=wakeups,
        live=live,
        jobs=jobs,
        handle=handle,
        limits=limits,
        clients=Clients(settings.trusted_proxies),
        files=files,
        photos=photos,
    )


def pending_journal(minyi: Minyi) -> Callable[[str], RedisPending] | None:
    """Each channel's journal of replies still to push, when other processes could recover them
    (Redis); None on the embedded database, where the one process is all there is."""
    redis = minyi.redis
    if redis is None:
        return None
    return lambda channel: RedisPending(redis, minyi.keys, minyi.cipher, channel)


@asynccontextmanager
async def running(minyi: Minyi) -> AsyncIterator[Minyi]:
    """Connect and start what was built; close it all on exit, in reverse."""
    started: list[Channel | StaffTarget] = []
    try:
        await prepare_schema(minyi.db)
        await check_key(minyi.db, minyi.cipher, minyi.key_source)
        await minyi.live.start()
        if isinstance(minyi.files.inner, S3FileStore):
            await minyi.files.inner.start()
        minyi.http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        services = Services(
            http=minyi.http,
            shared=minyi.shared,
            rejected=minyi.metrics.reject,
            delivery_report=DeliveryReports(minyi.units),
            mailbox=DatabaseMailbox(minyi.db, minyi.cipher, minyi.live),
            observed=minyi.metrics.observe,
            clients=minyi.clients,
            photos=minyi.photos,
            pending=pending_journal(minyi),
        )
        parts: list[Channel | StaffTarget] = [*minyi.channels.values(), *minyi.staff_targets]
        for part in parts:
            await part.start(services)
            started.append(part)
        yield minyi
    finally:
        for part in reversed(started):
            close = getattr(part, "close", None)  # staff targets hold nothing of their own
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing %s failed", part.name)
        await minyi.live.close()
        if isinstance(minyi.files.inner, S3FileStore):
            await minyi.files.inner.close()
        if minyi.http is not None:
            await minyi.http.close()
        if minyi.redis is not None:
            await minyi.redis.aclose()
        await minyi.db.dispose()


@asynccontextmanager
async def open_minyi(
    settings: Settings, *, replace_channels: dict[str, Channel] | None = None
) -> AsyncIterator[Minyi]:
    """Build and run everything, for commands and tests that need no web server."""
    minyi = build_minyi(settings, replace_channels=replace_channels)
    async with running(minyi):
        yield minyi
