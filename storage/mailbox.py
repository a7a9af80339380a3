"""Messages kept for web-chat sessions until the citizen comes back (implements the channel's port)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select, update

from conversation.messages import Reply

from .crypto import PiiCipher
from .db import Database
from .models import MailboxMessage, utcnow


class DatabaseMailbox:
    def __init__(self, db: Database, cipher: PiiCipher, channel: str = "webchat") -> None:
        self.db = db
        self.cipher = cipher
        self.channel = channel

    async def put(self, recipient: str, replies: Sequence[Reply]) -> None:
        async with self.db.session() as session, session.begin():
            for reply in replies:
                sealed = self.cipher.encrypt(
                    json.dumps(reply.to_json(), ensure_ascii=False), "mailbox"
                )
                session.add(MailboxMessage(channel=self.channel, recipient=recipient, reply=sealed))

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
