"""SMS replies taken durably first, worked through after: a push is acknowledged in one insert.

A provider's push may carry hundreds of replies; answering it only after each was matched to
its survey and recorded took seconds (long enough for the provider to give up and push again).
`take` stores a push's replies, encrypted, in one transaction, and the push is acknowledged;
the `sms-replies` job (`work_once`) then hands them to the survey handler: the plain ratings of
a whole batch together, in one transaction (`handle_many`), the rest one by one, each phone's
in order after its ratings; when the batch fails, every reply of it one by one. A reply is deleted
only after it was handled; one whose handling failed is tried again later, and one handled
twice is recognised by the handler's own dedupe key, so nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, insert, select, update

from channels.sms import SmsReply
from storage.crypto import PiiCipher
from storage.db import Database
from storage.models import SmsReplyWaiting, utcnow
from storage.uow import Committed

log = logging.getLogger(__name__)

QUEUE = "sms_replies"  # what a commit that stored replies touched: wakes the job
LEASE = timedelta(minutes=2)  # a run that died holding replies frees them after this
# Phones handled side by side (one phone's replies in the order they came); on SQLite, whose one
# writer takes transactions in turn, more would only queue a push's own insert behind them.
PARALLEL = 16
PARALLEL_SQLITE = 2
MAX_BACKOFF = timedelta(minutes=10)
# Plain ratings handled in one transaction (`SurveyReplies.many`); on SQLite fewer, so that a
# push's insert, waiting for the one writer, is not held up long.
TOGETHER = 200
TOGETHER_SQLITE = 50
# On PostgreSQL, transactions of plain ratings in flight at once, each phone's replies in one of
# them: while the server writes one batch, the next is prepared (most of a batch's time is the
# server's). Their cases are locked in case order, so two never deadlock.
LANES = 2
# Replies leased at a time: a full transaction for every lane.
BATCH = TOGETHER * LANES
BATCH_SQLITE = 200


def _seal(cipher: PiiCipher, reply: SmsReply) -> bytes:
    return cipher.encrypt(
        json.dumps(
            {
                "provider": reply.provider,
                "phone": reply.phone,
                "text": reply.text,
                "received_at": reply.received_at.isoformat(),
                "dedupe_key": reply.dedupe_key,
            },
            ensure_ascii=False,
        ),
        "sms-reply",
    )


def _open(cipher: PiiCipher, blob: bytes) -> SmsReply:
    data = json.loads(cipher.decrypt(blob, "sms-reply"))
    return SmsReply(
        provider=data["provider"],
        phone=data["phone"],
        text=data["text"],
        received_at=datetime.fromisoformat(data["received_at"]),
        dedupe_key=data["dedupe_key"],
    )


class SmsInbox:
    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        handle: Callable[[SmsReply], Awaitable[None]],
        committed: Committed,
        handle_many: Callable[[Sequence[SmsReply]], Awaitable[list[bool]]] | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.handle = handle
        self.committed = committed
        # Many replies at once, in one transaction (the survey handler's plain ratings): says
        # which it handled; the others go to `handle` one by one, in order, after it.
        self.handle_many = handle_many

    async def take(self, replies: Sequence[SmsReply]) -> None:
        """Store a push's replies (the SMS channel's `on_replies`); raises if they were not."""
        if not replies:
            return
        now = utcnow()
        rows = [
            {
                "reply_enc": _seal(self.cipher, r),
                "attempts": 0,
                "next_try_at": now,
                "created_at": now,
            }
            for r in replies
        ]
        table = SmsReplyWaiting.__table__
        assert isinstance(table, Table)
        async with self.db.session() as session, session.begin():
            # On the table: one executemany, without the ORM's per-row bulk handling.
            await session.execute(insert(table), rows)
        self.committed(frozenset({QUEUE}))

    async def work_once(self) -> int:
        """Handle the replies that are due, oldest first; how many were taken in hand."""
        leased = await self._lease()
        if not leased:
            return 0
        replies = [
            (row_id, attempts, _open(self.cipher, blob)) for row_id, attempts, blob in leased
        ]
        done: list[int] = []
        failed: list[tuple[int, int]] = []
        if self.handle_many is not None:
            taken = await self._together(self.handle_many, [reply for _, _, reply in replies])
            done = [row_id for (row_id, _, _), ok in zip(replies, taken, strict=True) if ok]
            replies = [each for each, ok in zip(replies, taken, strict=True) if not ok]
        by_phone: dict[str, list[tuple[int, int, SmsReply]]] = {}
        for row_id, attempts, reply in replies:
            by_phone.setdefault(reply.phone, []).append((row_id, attempts, reply))
        gate = asyncio.Semaphore(PARALLEL_SQLITE if self.db.is_sqlite else PARALLEL)

        async def in_order(queue: list[tuple[int, int, SmsReply]]) -> None:
            async with gate:
                for position, (row_id, _, reply) in enumerate(queue):
                    try:
                        await self.handle(reply)
                    except Exception:
                        log.exception("SMS reply %s not handled; tried again later", row_id)
                        # The phone's later replies wait too: a comment must not overtake
                        # the rating it follows.
                        failed.extend((i, a) for i, a, _ in queue[position:])
                        return
                    done.append(row_id)

        await asyncio.gather(*(in_order(q) for q in by_phone.values()))
        await self._settle(done, failed)
        return len(leased)

    async def _together(
        self,
        handle_many: Callable[[Sequence[SmsReply]], Awaitable[list[bool]]],
        replies: list[SmsReply],
    ) -> list[bool]:
        """Hand the replies over in transactions of `TOGETHER` (fewer on SQLite, whose one
        writer a push's insert waits for), in `LANES` side by side on PostgreSQL; which were
        handled. All of a phone's replies go to one lane, in order, so they stay in order."""
        taken = [False] * len(replies)
        lanes: list[list[int]] = [[] for _ in range(1 if self.db.is_sqlite else LANES)]
        lane_of: dict[str, int] = {}
        for i, reply in enumerate(replies):
            lane = lane_of.setdefault(reply.phone, len(lane_of) % len(lanes))
            lanes[lane].append(i)
        await asyncio.gather(
            *(self._lane(handle_many, replies, lane, taken) for lane in lanes if lane)
        )
        return taken

    async def _lane(
        self,
        handle_many: Callable[[Sequence[SmsReply]], Awaitable[list[bool]]],
        replies: list[SmsReply],
        lane: list[int],
        taken: list[bool],
    ) -> None:
        """One lane's replies (indexes into `replies`, in order), transaction after
        transaction; sets `taken` for those handled. A phone with a reply not handled has its
        later replies left too, so they follow it one by one, in order."""
        size = TOGETHER_SQLITE if self.db.is_sqlite else TOGETHER
        held_back: set[str] = set()  # phones with a reply left for one by one
        for start in range(0, len(lane), size):
            part = lane[start : start + size]
            chunk = [i for i in part if replies[i].phone not in held_back]
            try:
                flags = await handle_many([replies[i] for i in chunk]) if chunk else []
            except Exception:
                # Nothing of this batch was written: its replies are handled one by one, so one
                # that cannot be holds up only its own phone.
                log.exception("%d SMS replies not handled together; one by one", len(chunk))
                flags = [False] * len(chunk)
            for i, ok in zip(chunk, flags, strict=True):
                taken[i] = ok
            held_back.update(replies[i].phone for i in part if not taken[i])

    async def waiting(self) -> int:
        async with self.db.reading() as session:
            return int(await session.scalar(select(func.count()).select_from(SmsReplyWaiting)) or 0)

    async def _lease(self) -> list[tuple[int, int, bytes]]:
        """Take the due replies for `LEASE`: another process's run skips them meanwhile."""
        now = utcnow()
        async with self.db.session() as session, session.begin():
            due = (
                select(SmsReplyWaiting.id)
                .where(SmsReplyWaiting.next_try_at <= now)
                .order_by(SmsReplyWaiting.id)
                .limit(BATCH_SQLITE if self.db.is_sqlite else BATCH)
                .with_for_update(skip_locked=True)
            )
            ids = list(await session.scalars(due))
            if not ids:
                return []
            rows = await session.execute(
                update(SmsReplyWaiting)
                .where(SmsReplyWaiting.id.in_(ids), SmsReplyWaiting.next_try_at <= now)
                .values(next_try_at=now + LEASE)
                .returning(SmsReplyWaiting.id, SmsReplyWaiting.attempts, SmsReplyWaiting.reply_enc)
            )
            return sorted((r.id, r.attempts, r.reply_enc) for r in rows)

    async def _settle(self, done: list[int], failed: list[tuple[int, int]]) -> None:
        now = utcnow()
        async with self.db.session() as session, session.begin():
            if done:
                await session.execute(delete(SmsReplyWaiting).where(SmsReplyWaiting.id.in_(done)))
            for row_id, attempts in failed:
                wait = min(timedelta(seconds=5 * 2**attempts), MAX_BACKOFF)
                await session.execute(
                    update(SmsReplyWaiting)
                    .where(SmsReplyWaiting.id == row_id)
                    .values(attempts=attempts + 1, next_try_at=now + wait)
                )
