"""Live updates across processes: a short note ("thread 12 changed") published after a commit,
heard by whoever shows that thing right now (a desk's open inbox, a citizen's open web chat).

A note says *what* changed, never how: whoever hears it reads the current state again, so a late
or repeated note can never roll a page back. Each listener keeps a set of pending notes (one per
thing), so a burst coalesces and a slow listener cannot make memory grow. With Redis, each
process holds one pattern subscription and fans the notes out to its own listeners; embedded,
the notes go straight to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .keys import Keys

log = logging.getLogger(__name__)

# Distinct notes a listener may have waiting; more than that and it is simply told to reload.
PENDING_LIMIT = 500
RECONNECT = 1.0


class Listener:
    """Notes for one live view: `await next()` gives the topics' notes that arrived since."""

    def __init__(self, topics: frozenset[str]) -> None:
        self.topics = topics
        self.pending: dict[str, None] = {}
        self.flooded = False
        self.arrived = asyncio.Event()

    def hear(self, note: str) -> None:
        if len(self.pending) >= PENDING_LIMIT:
            self.flooded = True  # too much to list: the view reloads everything
        else:
            self.pending[note] = None
        self.arrived.set()

    async def next(self) -> list[str]:
        await self.arrived.wait()
        self.arrived.clear()
        notes, self.pending = list(self.pending), {}
        if self.flooded:
            self.flooded = False
            return ["*"]
        return notes


class LocalBus:
    """One process: notes go straight to its listeners."""

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()

    def publish(self, topic: str, note: str) -> None:
        self._deliver(topic, note)

    def _deliver(self, topic: str, note: str) -> None:
        for listener in self.listeners:
            if topic in listener.topics:
                listener.hear(note)

    @asynccontextmanager
    async def listen(self, *topics: str) -> AsyncIterator[Listener]:
        listener = Listener(frozenset(topics))
        self.listeners.add(listener)
        try:
            yield listener
        finally:
            self.listeners.discard(listener)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus(LocalBus):
    """Every process: notes published to Redis, heard through one subscription per process."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__()
        self.redis = redis
        self.keys = keys
        self.sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def publish(self, topic: str, note: str) -> None:
        # Called right after a commit, from synchronous code: sent in the background. A note
        # lost with Redis down only delays a view until its next note or reload.
        task = asyncio.get_running_loop().create_task(self._send(topic, note))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _send(self, topic: str, note: str) -> None:
        try:
            await self.redis.publish(self.keys.live(topic), note)
        except RedisError as exc:
            log.warning("live note %s on %s not published: %s", note, topic, exc)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._hear())

    async def _hear(self) -> None:
        prefix = self.keys.live()
        while not self._stopping.is_set():
            try:
                # A Redis Cluster client must know the slots before its pub/sub picks a node
                # (redis-py fails with a KeyError otherwise). Classic PUBLISH reaches every
                # node of a cluster, so one subscription anywhere hears every process.
                await self.redis.initialize()
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.psubscribe(prefix + "*")
                    while not self._stopping.is_set():
                        # A short wait, not a blocking read: a quiet channel is not an error,
                        # and stopping needs no cancellation in the middle of a read (redis-py
                        # can leave a cancelled read waiting forever).
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None or message.get("type") != "pmessage":
                            continue
                        channel, data = message["channel"], message["data"]
                        topic = (channel.decode() if isinstance(channel, bytes) else channel)[
                            len(prefix) :
                        ]
                        self._deliver(topic, data.decode() if isinstance(data, bytes) else data)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("live updates: subscription lost (%s); again in %.0f s", exc, RECONNECT)
                for listener in self.listeners:
                    listener.hear("*")  # something may have been missed: reload
                await asyncio.sleep(RECONNECT)

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            _, late = await asyncio.wait([self._task], timeout=3)
            for task in late:
                task.cancel()  # a read that did not come back: give up on it
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([self._task], timeout=2)
        if self.sending:
            await asyncio.wait(self.sending, timeout=2)
