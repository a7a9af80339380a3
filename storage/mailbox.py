"""Messages kept for web-chat sessions until the citizen's page takes them (the channel's port).

An open page waits for its messages (`wait`): each `put` publishes a live note for that
recipient after its commit, so a waiting page on any process hears it at once; without a note
(Redis down for a moment) the page's next wait finds the message anyway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from sqlalchemy import select, update

from conversation.messages import Reply

from .crypto import PiiCipher
from .db import Database
from .live import LocalBus
from .models import MailboxMessage, utcnow


class DatabaseMailbox:
    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        live: LocalBus | None = None,
        channel: str = "webchat",
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.live = live
        self.channel = channel

    def _topic(self, recipient: str) -> str:
        return f"mailbox:{self.channel}:{recipient}"

    async def put(self, recipient: str, replies: Sequence[Reply]) -> None:
        async with self.db.session() as session, session.begin():
            for reply in replies:
                sealed = self.cipher.encrypt(
                    json.dumps(reply.to_json(), ensure_ascii=False), "mailbox"
                )
                session.add(MailboxMessage(channel=self.channel, recipient=recipient, reply=sealed))
        if self.live is not None and replies:
            self.live.publish(self._topic(recipient), "new")

    async def wait(self, recipient: str, seconds: float) -> list[Reply]:
        """What is waiting now, or else the first messages to arrive within `seconds` (an open
        page's long poll); [] when none came."""
        if self.live is None or seconds <= 0:
            return await self.take(recipient)
        # Listen before looking, so that a message put in between is heard, not missed.
        async with self.live.listen(self._topic(recipient)) as listener:
            replies = await self.take(recipient)
            if replies:
                return replies
            try:
                await asyncio.wait_for(listener.next(), seconds)
            except TimeoutError:
                return []
            return await self.take(recipient)

    async def take(self, recipient: str, limit: int = 50) -> list[Reply]:
        """Undelivered messages, oldest first, marked delivered as they are handed out."""
        async with self.db.session() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(MailboxMessage)
                    .where(
                        MailboxMessage.channel == self.channel,
                        MailboxMessage.recipient == recipient,
                        MailboxMessage.delivered_at.is_(None),
                    )
                    .order_by(MailboxMessage.id)
                    .limit(limit)
                )
            )
            if rows:
                await session.execute(
                    update(MailboxMessage)
                    .where(MailboxMessage.id.in_([r.id for r in rows]))
                    .values(delivered_at=utcnow())
                )
            return [
                Reply.from_json(json.loads(self.cipher.decrypt(r.reply, "mailbox"))) for r in rows
            ]
