"""Minyi on a Redis Cluster (three primaries, a replica each, from Debian's binaries): the
conversation store, re-delivery memory, locks, live notes, the outbox relay and a consumer group
— and a primary failing over while citizens file; then the same failover under Sentinel."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from bot.app.settings import Settings, SettingsError, load_settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice.stream_consumer import StreamConsumer
from conversation.messages import Inbound
from storage import redis_connect
from storage.live import RedisBus
from storage.models import Case, OutboxEntry
from storage.relay import Relay
from storage.shared import RedisShared

from .conftest import PII_KEY, joined, until_done
from .redis_cluster import LocalCluster, redis_cluster  # noqa: F401  (the fixture)
from .redis_sentinel import LocalSentinel, redis_sentinel  # noqa: F401  (the fixture)

FILING = (
    "1",
    "4",
    "小区门口的路灯坏了一个多月，晚上很黑。",
    "幸福路12号东门",
    "跳过",
    "张三",
    "13800138000",
    "1",
)


@pytest.fixture
async def on_cluster(
    redis_cluster: LocalCluster,  # noqa: F811
    clean_postgres: str,
) -> AsyncIterator[Minyi]:
    prefix = f"minyi-test:{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        database_url=clean_postgres,
        pii_key=PII_KEY,
        redis_url=redis_cluster.url,
        redis_prefix=prefix,
        stream=prefix + "events",
    )
    async with open_minyi(settings) as minyi:
        yield minyi


RESENT: list[str] = []  # messages that had to be sent again (Redis answered with an error)


async def say(minyi: Minyi, sender: str, text: str, message_id: str | None = None) -> str:
    """One message as a channel delivers it: sent again (same id) while Redis is failing over,
    as WeChat and the SMS gateways re-send what got no answer."""
    message_id = message_id or uuid.uuid4().hex
    for _ in range(200):
        try:
            replies = await minyi.handle(
                Inbound(channel="webchat", sender=sender, text=text, message_id=message_id)
            )
        except (RedisError, OSError) as exc:
            RESENT.append(f"{sender} {text}: {type(exc).__name__}")
            await asyncio.sleep(0.05)
            continue
        return joined(replies)
    raise AssertionError(f"{sender}: {text!r} was never answered")


async def file(minyi: Minyi, sender: str) -> str:
    reply = ""
    for text in FILING:
        reply = await say(minyi, sender, text)
    assert "编号是 " in reply, reply
    return reply.split("编号是 ")[1].split("，")[0]


def test_cluster_and_sentinel_urls_are_read_and_wrong_ones_refused() -> None:
    nodes = redis_connect.parse("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3")
    assert nodes is not None
    assert nodes.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379))
    assert (nodes.username, nodes.password, nodes.tls) == ("u", "p@ss", False)
    nodes = redis_connect.parse(
        "rediss+sentinel://:secret@s1:26379,s2/mymaster/2?sentinel_password=x"
    )
    assert nodes is not None and nodes.tls
    assert nodes.hosts == (("s1", 26379), ("s2", 26379))
    assert (nodes.service, nodes.db, nodes.password) == ("mymaster", 2, "secret")
    assert nodes.query == {"sentinel_password": "x"}
    assert redis_connect.parse("redis://localhost:6379/0") is None
    for url in (
        "redis+cluster://localhost:6379,localhost:6380",
        "redis+sentinel://localhost:26379/mymaster",
    ):
        assert load_settings({"MINYI_REDIS_URL": url}).redis_url == url
    for wrong, says in (
        ("redis+sentinel://s1:26379", "name the Sentinel service"),
        ("redis+cluster://n1:6379/3", "only database 0"),
        ("redis+cluster://n1:port", "is not host:port"),
        ("memcached://x", "use one of"),
        ("redis+cluster://", "names no host"),
    ):
        with pytest.raises(SettingsError, match=says):
            load_settings({"MINYI_REDIS_URL": wrong})


async def test_the_store_dedupe_locks_live_notes_and_the_stream_on_a_cluster(
    on_cluster: Minyi,
    redis_cluster: LocalCluster,  # noqa: F811
) -> None:
    minyi = on_cluster
    redis, keys = minyi.redis, minyi.keys
    assert redis is not None and type(redis).__name__ == "RedisCluster"

    codes = [await file(minyi, f"c{i}") for i in range(3)]
    # Conversations live on different primaries; each one's keys on one (its hash tag).
    primaries = {redis_cluster.primary_of(keys.conversation(f"webchat:c{i}")) for i in range(3)}
    primaries |= {redis_cluster.primary_of(keys.conversation(f"webchat:x{i}")) for i in range(9)}
    assert len(primaries) == 3

    # A re-delivered message gets the first answer and files nothing new.
    first = await say(minyi, "c0", "2", message_id="same-id")
    assert await say(minyi, "c0", "2", message_id="same-id") == first

    # The shared lock and counters (WeChat's token fetch, the providers' pacing).
    shared = RedisShared(redis, keys)
    order: list[str] = []

    async def hold(name: str) -> None:
        async with shared.lock("token", 5):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert [await shared.count("pace", 10) for _ in range(3)] == [1, 2, 3]

    # Live notes reach another process's subscription.
    other = RedisBus(redis_connect.connect(redis_cluster.url), keys)
    await other.start()
    try:
        async with other.listen("desk") as listener:
            # Published until heard: the other subscription may take a moment to be in place
            # (a note sent before it is, is lost, as with any pub/sub).
            heard: list[str] = []
            for _ in range(50):
                minyi.live.publish("desk", "thread:7")
                with contextlib.suppress(TimeoutError):
                    heard += await asyncio.wait_for(listener.next(), 0.2)
                if "thread:7" in heard:
                    break
            assert "thread:7" in heard
    finally:
        await other.close()
        await other.redis.aclose()

    # The relay and a consumer group read what was filed, once.
    relay = Relay(minyi.db, minyi.cipher, redis, minyi.settings.stream)
    consumer = StreamConsumer(redis, minyi.settings.stream, "office", "c1", block_ms=10)
    await consumer.ensure_group()
    await until_done(relay.publish_once)
    seen: list[dict[str, Any]] = []

    async def take(event: dict[str, Any]) -> None:
        seen.append(event)

    while await consumer.poll(take):
        pass
    assert [e["case"] for e in seen] == codes
    assert (await redis.xpending(minyi.settings.stream, "office"))["pending"] == 0


async def test_a_primary_fails_over_while_citizens_file(
    on_cluster: Minyi,
    redis_cluster: LocalCluster,  # noqa: F811
) -> None:
    minyi = on_cluster
    redis = minyi.redis
    assert redis is not None
    stream = minyi.settings.stream
    relay = Relay(minyi.db, minyi.cipher, redis, stream)
    consumer = StreamConsumer(redis, stream, "office", "c1", block_ms=10)
    await consumer.ensure_group()
    citizens = [f"f{i}" for i in range(8)]
    # The primary holding the stream, and the conversations that live there with it.
    doomed = redis_cluster.primary_of(stream)
    started = asyncio.Event()

    async def citizen(sender: str) -> str:
        await say(minyi, sender, FILING[0])
        started.set()
        return await _rest_of_filing(minyi, sender, answered)

    async def relay_all_along() -> None:
        while not done.is_set():
            # A failed run leaves its rows unpublished; they go out on the next.
            with contextlib.suppress(RedisError, OSError):
                await relay.publish_once()
            await asyncio.sleep(0.05)

    done = asyncio.Event()
    answered: list[float] = []
    relaying = asyncio.create_task(relay_all_along())
    filings = asyncio.gather(*(citizen(s) for s in citizens))
    await started.wait()
    new_primary = await asyncio.to_thread(redis_cluster.failover, doomed)
    failed_over = asyncio.get_running_loop().time()
    assert not filings.done()  # citizens were mid-filing when the primary changed
    codes = await filings
    assert any(at > failed_over for at in answered)
    done.set()
    await relaying
    assert redis_cluster.primary_of(stream) == new_primary != doomed

    async with minyi.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == len(citizens)
        outbox = set(await session.scalars(select(OutboxEntry.id)))
    assert len(set(codes)) == len(citizens)
    await until_done(relay.publish_once)
    ids: list[str] = []

    async def take(event: dict[str, Any]) -> None:
        ids.append(event["id"])

    while await consumer.poll(take):
        pass
    # Every event reached the group; a batch re-published across the failover is recognised
    # by its id, as the contract tells consumers to.
    assert set(ids) == outbox


# What a citizen answers to each question of the filing, by the question's marker. A Redis
# primary that dies may take its last acknowledged writes with it (replication is
# asynchronous): the conversation then asks the previous question again, and a person answers
# what is asked, not what they meant to say next.
ANSWERS = {
    "（1/6）": FILING[1],
    "（2/6）": FILING[2],
    "（3/6）": FILING[3],
    "（4/6）": FILING[4],
    "（5/6）": FILING[5],
    "（6/6）": FILING[6],
    "请核对要提交的内容": FILING[7],
    "1 我要反映": "1",  # the whole conversation was lost: back at the menu, start again
    "意见或建议": "取消",  # …and the "4" meant for the category chose a suggestion
}


async def _rest_of_filing(minyi: Minyi, sender: str, answered: list[float]) -> str:
    reply = await say(minyi, sender, FILING[1])
    for _ in range(30):
        if "编号是 " in reply:
            return reply.split("编号是 ")[1].split("，")[0]
        answer = next((a for marker, a in ANSWERS.items() if marker in reply), None)
        assert answer is not None, reply
        await asyncio.sleep(0.1)  # a person types: the filings span the failover
        reply = await say(minyi, sender, answer)
        answered.append(asyncio.get_running_loop().time())
    raise AssertionError(f"{sender} never got a receipt: {reply}")


async def test_sentinel_leads_to_the_new_primary_when_one_dies_while_citizens_file(
    redis_sentinel: LocalSentinel,  # noqa: F811
    clean_postgres: str,
) -> None:
    prefix = f"minyi-test:{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        database_url=clean_postgres,
        pii_key=PII_KEY,
        redis_url=redis_sentinel.url,
        redis_prefix=prefix,
        stream=prefix + "events",
    )
    async with open_minyi(settings) as minyi:
        assert minyi.redis is not None
        relay = Relay(minyi.db, minyi.cipher, minyi.redis, settings.stream)
        consumer = StreamConsumer(minyi.redis, settings.stream, "office", "c1", block_ms=10)
        await consumer.ensure_group()
        started, answered = asyncio.Event(), list[float]()

        async def citizen(sender: str) -> str:
            await say(minyi, sender, FILING[0])
            started.set()
            return await _rest_of_filing(minyi, sender, answered)

        filings = asyncio.gather(*(citizen(f"s{i}") for i in range(4)))
        await started.wait()
        first = redis_sentinel.current_primary()
        promoted = await asyncio.to_thread(redis_sentinel.kill_primary)
        failed_over = asyncio.get_running_loop().time()
        assert promoted != first and not filings.done()
        codes = await filings
        assert len(set(codes)) == 4 and any(at > failed_over for at in answered)

        # The group made just before the primary died may have died with it (replication is
        # asynchronous); `minyi backoffice tail` makes it again after any Redis error, as here.
        await consumer.ensure_group()
        await until_done(relay.publish_once)
        seen: list[str] = []

        async def take(event: dict[str, Any]) -> None:
            seen.append(event["case"])

        while await consumer.poll(take):
            pass
        assert sorted(seen) == sorted(codes)
        # Everything Minyi wrote since is on the promoted server.
        with redis.Redis(port=promoted) as direct:
            assert direct.xlen(settings.stream) == 4
