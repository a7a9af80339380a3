"""Deliveries answered before their replies went out, kept in Redis until the replies are pushed.

A WeChat push answered `success` (shedding, or a turn over its budget) has its replies pushed
later; WeChat will not send the message again. Until the push is done the message is written
here, so that a crash (or a deploy that cancels the work) does not lose it: the hash
`pending:{channel}` maps each delivery's claim key to `owner|sealed message`, where `owner` is
the writing process's id and the message is the `Inbound` as JSON, sealed with the PII cipher
(it holds the citizen's words). Each process keeps `alive:{channel}:owner` with a short expiry;
an entry whose owner's key is gone is taken by one other process (a script moves it to the taker
atomically), which runs the turn again (the engine deduplicates) and pushes the replies.

Only with Redis: the embedded database serves one process, and there is no one to recover for.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from conversation.messages import Inbound, Location, Media

from .crypto import PiiCipher
from .keys import Keys
from .scripts import Script

log = logging.getLogger(__name__)

# Moves an entry to the taker when its owner is no longer alive and nobody moved it meanwhile.
# KEYS: the pending hash, the owner's liveness key (one hash tag). ARGV: field, value seen, new.
_TAKE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# Removes an entry only while it is still the remover's (a taker's entry stays the taker's).
_SETTLE = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and string.sub(value, 1, string.len(ARGV[2])) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


class RedisPending:
    """One process's journal for one channel (`owner` is new for every instance)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        cipher: PiiCipher,
        channel: str,
        *,
        alive_ttl: float = 15.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.cipher = cipher
        self.channel = channel
        self.owner = uuid.uuid4().hex
        self.alive_ttl = alive_ttl
        self._hash = keys.pending(channel)
        self._take = Script(redis, _TAKE)
        self._settle = Script(redis, _SETTLE)

    @property
    def _field(self) -> str:
        return f"pending:{self.channel}"  # the cipher's field name: entries cannot be swapped

    def _value(self, inbound: Inbound) -> bytes:
        sealed = self.cipher.encrypt(json.dumps(_dump(inbound), ensure_ascii=False), self._field)
        return self.owner.encode() + b"|" + sealed

    async def beat(self) -> None:
        """This process is alive for `alive_ttl` more seconds."""
        await self.redis.set(
            self.keys.alive(self.channel, self.owner), b"1", px=int(self.alive_ttl * 1000)
        )

    async def leave(self) -> None:
        """Closed: what is left here is for the other processes to take, now."""
        await self.redis.delete(self.keys.alive(self.channel, self.owner))

    async def put(self, claim: str, inbound: Inbound) -> None:
        await self.redis.hset(self._hash, claim, self._value(inbound))

    async def done(self, claim: str) -> None:
        await self._settle(keys=[self._hash], args=[claim, self.owner + "|"])

    async def take_orphans(self) -> list[tuple[str, Inbound]]:
        """The entries whose owners are gone, each now this process's (one taker per entry)."""
        entries: dict[Any, Any] = await self.redis.hgetall(self._hash)
        taken: list[tuple[str, Inbound]] = []
        for raw_field, value in entries.items():
            claim = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            value = value if isinstance(value, bytes) else str(value).encode("latin-1")
            owner, _, sealed = value.partition(b"|")
            if owner.decode() == self.owner:
                continue
            alive = self.keys.alive(self.channel, owner.decode())
            mine = self.owner.encode() + b"|" + sealed
            if not await self._take(keys=[self._hash, alive], args=[claim, value, mine]):
                continue
            try:
                inbound = _load(json.loads(self.cipher.decrypt(sealed, self._field)))
            except Exception:
                # Sealed under a key this process does not have, or damaged: keep it for a
                # process that can read it, and say so (nothing else will).
                log.exception("pending %s delivery %s cannot be read; left", self.channel, claim)
                await self.redis.hset(self._hash, claim, value)
                continue
            taken.append((claim, inbound))
        return taken

    async def owners(self) -> dict[str, str]:
        """Each entry's owner (what the tests look at)."""
        entries: dict[Any, Any] = await self.redis.hgetall(self._hash)
        return {
            (k.decode() if isinstance(k, bytes) else k): (
                v if isinstance(v, bytes) else str(v).encode()
            )
            .partition(b"|")[0]
            .decode()
            for k, v in entries.items()
        }


def _dump(inbound: Inbound) -> dict[str, Any]:
    return {
        "channel": inbound.channel,
        "sender": inbound.sender,
        "kind": inbound.kind,
        "text": inbound.text,
        "message_id": inbound.message_id,
        "media": [
            {"kind": m.kind, "ref": m.ref, "url": m.url, "file": m.file} for m in inbound.media
        ],
        "location": (
            None
            if inbound.location is None
            else {
                "lat": inbound.location.lat,
                "lng": inbound.location.lng,
                "label": inbound.location.label,
            }
        ),
        "event": inbound.event,
        "event_key": inbound.event_key,
        "language": inbound.language,
        "received_at": inbound.received_at.isoformat(),
    }


def _load(data: dict[str, Any]) -> Inbound:
    location = data.get("location")
    return Inbound(
        channel=data["channel"],
        sender=data["sender"],
        kind=data["kind"],
        text=data["text"],
        message_id=data["message_id"],
        media=tuple(Media(**m) for m in data["media"]),
        location=None if location is None else Location(**location),
        event=data["event"],
        event_key=data["event_key"],
        language=data["language"],
        received_at=datetime.fromisoformat(data["received_at"]),
    )


__all__ = ["RedisPending"]
