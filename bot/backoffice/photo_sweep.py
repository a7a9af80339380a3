"""The orphan-photo sweep: photos kept (a web-chat upload, a fetched WeChat or Telegram photo)
that no case took, deleted from the file store once nothing can take them any more.

An upload is in the ledger (storage/uploads.py) from before its files are written. A run takes
those older than the age (`MINYI_PHOTO_ORPHAN_HOURS`) and, for each:

- a case holds it (an attachment names its key): only the ledger's row goes;
- it came from a conversation: that conversation is locked as a turn locks it (the Redis lock,
  or the database's), its state read, and while it is still live (an open form may hold the
  photo and file it at any moment) the upload is looked at again one age later. An ended
  conversation never comes back (the next message starts a new one), so once it has ended and
  no attachment names the key, no case can take the photo: its files are deleted, then its row,
  all under that lock, so a form filed at the same moment is either seen or waits;
- it came from no conversation (a fetched photo whose attachment another worker wrote, a case's
  photo let go by an erasure or an archive): its files are deleted, then its row.

Files go before the row: a run that fails between the two leaves the row, and the next run
deletes again (deleting nothing is no error)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversation.ports import ConversationStore
from storage.conversations import Busy, StoreTurn
from storage.files import FileStore
from storage.models import Attachment, Upload
from storage.uow import Units
from storage.uploads import delete_files

log = logging.getLogger(__name__)

BATCH = 50


class PhotoSweep:
    def __init__(
        self,
        units: Units,
        files: FileStore,
        store: ConversationStore,
        *,
        age: timedelta,
        lifetime: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.units = units
        self.files = files
        self.store = store
        self.age = age
        self.lifetime = lifetime  # how long a conversation lives after its last message
        self.clock = clock

    async def run_once(self) -> int:
        """Sweep a batch of old uploads; how many photos were deleted."""
        now = self.clock()
        cutoff = now - self.age
        taken = exists().where(Attachment.file_key == Upload.file_key)
        async with self.units() as uow:
            # Photos a case took: the case keeps them, the ledger forgets them.
            await uow.session.execute(
                delete(Upload)
                .where(Upload.seen_at < cutoff, taken)
                .execution_options(synchronize_session=False)
            )
            due = list(
                await uow.session.execute(
                    select(Upload.id, Upload.file_key, Upload.conversation)
                    .where(Upload.seen_at < cutoff, ~taken)
                    .order_by(Upload.seen_at, Upload.id)
                    .limit(BATCH)
                )
            )
            await uow.commit()
        swept = 0
        for upload_id, key, conversation in due:
            try:
                swept += await self._sweep(upload_id, key, conversation, now)
            except Busy:
                log.info("conversation busy; its upload is swept on a later run")
        if swept:
            log.info("swept %d photo(s) no case took", swept)
        return swept

    async def _sweep(self, upload_id: int, key: str, conversation: str, now: datetime) -> int:
        if not conversation:
            async with self.units() as uow:
                done = await self._forget(uow.session, upload_id, key)
                await uow.commit()
            return done
        async with self.store.lock(conversation):
            async with self.store.turn() as turn:
                state = await turn.load_state(conversation)
                live = state is not None and now - state.updated_at <= self.lifetime
                if isinstance(turn, StoreTurn):
                    # The turn's own transaction: on PostgreSQL without Redis it holds the
                    # conversation's advisory lock; on SQLite a second writer would wait for it.
                    session = (await turn.uow()).session
                    done = await self._settle(session, upload_id, key, live, now)
                    await turn.commit()
                    return done
            async with self.units() as uow:  # a conversation store without a database
                done = await self._settle(uow.session, upload_id, key, live, now)
                await uow.commit()
            return done

    async def _settle(
        self, session: AsyncSession, upload_id: int, key: str, live: bool, now: datetime
    ) -> int:
        if live:  # an open form may hold it: look again one age later
            await session.execute(update(Upload).where(Upload.id == upload_id).values(seen_at=now))
            return 0
        return await self._forget(session, upload_id, key)

    async def _forget(self, session: AsyncSession, upload_id: int, key: str) -> int:
        held = await session.scalar(select(exists().where(Attachment.file_key == key)))
        if not held:
            await delete_files(self.files, key)
        await session.execute(delete(Upload).where(Upload.id == upload_id))
        return int(not held)
