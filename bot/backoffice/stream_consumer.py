"""The reference consumer of the back-office stream: copy it to feed your own system.

A consumer group reads each entry once among its consumers and acknowledges it only after the
handler succeeded, so nothing is lost when a consumer dies: its pending entries are reclaimed by
another consumer after `claim_idle` (XAUTOCLAIM). An entry that keeps failing goes to the
dead-letter stream `<stream>:dead` after `max_deliveries`, with the error, and is acknowledged
so it stops blocking. Delivery is at least once: deduplicate on the entry's `id` field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]


def decode(stream_id: Any, fields: dict[Any, Any]) -> Event:
    """A stream entry as the JSON line `tail` prints: id, type, case, data, and the stream id."""
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    return {
        "id": text.get("id", ""),
        "type": text.get("type", ""),
        "case": text.get("case", ""),
        "data": json.loads(text.get("data") or "{}"),
        "stream_id": stream_id.decode() if isinstance(stream_id, bytes) else stream_id,
    }


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int = 100,
        block_ms: int = 5000,
        claim_idle_ms: int = 60_000,
        max_deliveries: int = 5,
    ) -> None:
        self.redis, self.stream, self.group, self.consumer = redis, stream, group, consumer
        self.count, self.block_ms, self.claim_idle_ms = count, block_ms, claim_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter = f"{stream}:dead"
        self._own_backlog_done = False

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def poll(self, handle: Handler) -> int:
        """One round: this consumer's own unfinished entries first, then entries idle at dead
        consumers, then new ones. The number of entries handled."""
        handled = 0
        if not self._own_backlog_done:
            # Entries this consumer read before a restart but never acknowledged.
            entries = await self._read("0", block=None)
            handled += await self._handle_all(entries, handle)
            self._own_backlog_done = not entries
        handled += await self._reclaim(handle)
        handled += await self._handle_all(await self._read(">", block=self.block_ms), handle)
        return handled

    async def _read(self, start: str, block: int | None) -> list[tuple[Any, dict[Any, Any]]]:
        answer = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.count, block=block
        )
        streams = cast(list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]], answer or [])
        return [entry for _, entries in streams for entry in entries if entry[1]]

    async def _reclaim(self, handle: Handler) -> int:
        handled, cursor = 0, "0-0"
        while True:
            cursor, entries, *_ = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.claim_idle_ms,
                start_id=cursor,
                count=self.count,
            )
            handled += await self._handle_all([e for e in entries if e[1]], handle)
            if cursor in (b"0-0", "0-0"):
                return handled

    async def _handle_all(self, entries: list[tuple[Any, dict[Any, Any]]], handle: Handler) -> int:
        for stream_id, fields in entries:
            await self._handle_one(stream_id, fields, handle)
        return len(entries)

    async def _handle_one(self, stream_id: Any, fields: dict[Any, Any], handle: Handler) -> None:
        try:
            await handle(decode(stream_id, fields))
        except Exception as exc:
            deliveries = await self._deliveries(stream_id)
            log.warning("handling %s failed (delivery %d): %s", stream_id, deliveries, exc)
            if deliveries >= self.max_deliveries:
                await self.redis.xadd(
                    self.dead_letter,
                    {
                        **fields,
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                        "group": self.group,
                        "stream_id": stream_id,
                        "deliveries": str(deliveries),
                    },
                )
                await self.redis.xack(self.stream, self.group, stream_id)
            return
        await self.redis.xack(self.stream, self.group, stream_id)

    async def _deliveries(self, stream_id: Any) -> int:
        pending = await self.redis.xpending_range(
            self.stream, self.group, min=stream_id, max=stream_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1
