"""Real backends for the tests: SQLite files, a throwaway PostgreSQL database, Redis prefixes.

Locally a test needing PostgreSQL or Redis is skipped (with the reason) when the server is down;
under CI=true that is a failure, so a green CI run means both were really exercised.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from channels.base import Notice, Recipient, Route
from conversation.messages import Inbound, Location, Media, Reply
from storage import migrate
from storage.db import Database
from storage.models import Base

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "MINYI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MINYI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PII_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
# Every table the models define: a new table can never leak rows from one test to the next.
TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)
# Where a request could leave a trace: every table but those start-up and migrations write
# (the key check, the schema's compatibility record).
STARTUP_TABLES = {"key_checks", "schema_compat"}
TRACE_TABLES = ", ".join(
    t.name for t in Base.metadata.sorted_tables if t.name not in STARTUP_TABLES
)


def run_apart(coroutine: Any) -> Any:
    """Run a coroutine to completion on its own thread and loop (callable from inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why}); start it to run this test"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


async def until_done(step: Callable[[], Awaitable[object]], limit: int = 100) -> int:
    """Run a worker's `step` until it reports no more work; how many runs did something.

    Bounded: a step that never finishes its work (an outbox row never marked published, a
    notification never marked sent) fails the test instead of hanging it."""
    for runs in range(limit):
        if not await step():
            return runs
    pytest.fail(f"{step!r} still reported work after {limit} runs")


# -- PostgreSQL: one database per test run, emptied before each test ------------------------------


def connection_cut_once(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`call`, whose first use fails as a database connection dropped mid-statement does."""
    cut = [1]

    async def cut_first(*args: Any) -> Any:
        if cut[0]:
            cut[0] -= 1
            raise ConnectionError("connection was closed in the middle of operation")
        return await call(*args)

    return cut_first


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"minyi_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = PG_ADMIN_URL

    async def create() -> str | None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await engine.dispose()
        url = admin.rsplit("/", 1)[0] + f"/{name}"
        db = Database(url)
        await migrate.upgrade(db)
        await db.dispose()
        return None

    async def drop() -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    error = run_apart(create())
    if error:
        unavailable("PostgreSQL at " + admin, error)
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    run_apart(drop())


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    async def truncate() -> None:
        engine = create_async_engine(postgres_url)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            await conn.execute(
                text("ALTER TABLE case_events ENABLE TRIGGER ALL")
            )  # a tamper test may disable it
        await engine.dispose()

    run_apart(truncate())
    return postgres_url


# -- Redis: a unique key prefix and stream per test, deleted afterwards --------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    async def ping() -> str | None:
        client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            await client.ping()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await client.aclose()
        return None

    async def clean(prefix: str) -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        async for key in client.scan_iter(match=prefix + "*", count=500):
            await client.delete(key)
        await client.aclose()

    error = run_apart(ping())
    if error:
        unavailable("Redis at " + REDIS_URL, error)
    prefix = f"minyi-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    run_apart(clean(prefix))


@pytest.fixture
async def redis_client(redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


# -- Settings for each backend --------------------------------------------------------------------


# Every test's requests come from one address and many tests file dozens of cases in a
# minute: the rate limits are tested on their own (tests/test_webchat_sessions.py), with
# their own settings, and kept out of the way elsewhere.
UNLIMITED: dict[str, Any] = {"rate_sender": (100_000, 60), "rate_address": (100_000, 60)}


def sqlite_settings(tmp_path: object, **overrides: object) -> Settings:
    base = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/minyi.db",
        api_token="test-token",
        pii_key=PII_KEY,
        files_dir=f"{tmp_path}/files",
        **UNLIMITED,
    )
    return base.replace(**overrides)


BACKENDS = ("sqlite", "postgres", "postgres+redis")


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    """Settings for each backend combination; tests using it run three times."""
    return settings_for(request, request.param, tmp_path)


@pytest.fixture(params=("sqlite", "postgres"))
def database_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    """The embedded store's backends (no Redis)."""
    return settings_for(request, request.param, tmp_path)


@pytest.fixture(params=("postgres", "postgres+redis"))
def shared_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    """Backends that several processes can share (the embedded SQLite default is one process)."""
    return settings_for(request, request.param, tmp_path)


@pytest.fixture
def sqlite_only(tmp_path: object) -> Settings:
    return sqlite_settings(tmp_path)


def settings_for(request: pytest.FixtureRequest, backend: str, tmp_path: object) -> Settings:
    if backend == "sqlite":
        return sqlite_settings(tmp_path)
    url = request.getfixturevalue("clean_postgres")
    base = Settings(
        database_url=url,
        api_token="test-token",
        pii_key=PII_KEY,
        files_dir=f"{tmp_path}/files",
        **UNLIMITED,
    )
    if backend == "postgres":
        return base
    prefix = request.getfixturevalue("redis_prefix")
    return base.replace(redis_url=REDIS_URL, redis_prefix=prefix, stream=prefix + "events")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Minyi]:
    async with open_minyi(settings) as rt:
        yield rt


@pytest.fixture
async def sqlite_runtime(sqlite_only: Settings) -> AsyncIterator[Minyi]:
    async with open_minyi(sqlite_only) as rt:
        yield rt


def reach_by_send(channel: Any, recipient: Recipient) -> list[Route]:
    """`Channel.reach` for a test's own chat channel: its `send`, to its own citizens."""
    if recipient.channel != channel.name or not recipient.chat_reachable:
        return []

    async def deliver(notice: Notice) -> str | None:
        result: str | None = await channel.send(recipient.address, notice.replies)
        return result

    return [Route(channel.name, channel.name, conversational=True, deliver=deliver)]


# -- A simulated citizen ----------------------------------------------------------------------------


class Answers(Protocol):
    """What a simulated citizen talks to: a Minyi, or a bare Engine."""

    async def handle(self, inbound: Inbound) -> list[Reply]: ...


@dataclass
class Citizen:
    """Talks to the engine like a channel would, one message at a time.

    `runtime` is a Minyi on the real backends, or a bare Engine on the in-memory store.
    """

    runtime: Answers
    sender: str = "citizen-1"
    channel: str = "webchat"
    language: str = ""

    async def send(self, inbound: Inbound) -> list[Reply]:
        return await self.runtime.handle(inbound)

    async def say(self, text: str, message_id: str | None = None) -> str:
        replies = await self.send(
            Inbound(
                channel=self.channel,
                sender=self.sender,
                text=text,
                message_id=uuid.uuid4().hex if message_id is None else message_id,
                language=self.language,
            )
        )
        return joined(replies)

    async def photo(self, ref: str = "media-1") -> str:
        return joined(
            await self.send(
                Inbound(
                    channel=self.channel,
                    sender=self.sender,
                    kind="image",
                    media=(Media("image", ref, f"https://example.invalid/{ref}.jpg"),),
                    message_id=uuid.uuid4().hex,
                )
            )
        )

    async def location(self, lat: float, lng: float, label: str = "") -> str:
        return joined(
            await self.send(
                Inbound(
                    channel=self.channel,
                    sender=self.sender,
                    kind="location",
                    location=Location(lat, lng, label),
                    message_id=uuid.uuid4().hex,
                )
            )
        )

    async def file_a_matter(
        self, description: str = "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"
    ) -> str:
        """A complete filing; returns the reply that carries the case code."""
        await self.say("1")
        await self.say("4")
        await self.say(description)
        await self.say("XX区幸福路12号幸福小区东门")
        await self.say("跳过")
        await self.say("张三")
        await self.say("13800138000")
        return await self.say("1")


def joined(replies: list[Reply]) -> str:
    return "\n".join(reply.as_plain_text() for reply in replies)


@pytest.fixture
def citizen(runtime: Minyi) -> Citizen:
    return Citizen(runtime)
