"""Photos citizens sent on WeChat or Telegram, fetched into Minyi's file store while the
provider still has them (a WeChat MediaId lasts 3 days), so that they stay with the case."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update

from channels.base import DeliveryFailed, MediaGone, MediaSource, PhotoKeeper
from conversation.messages import UnusablePhoto
from storage.models import Attachment
from storage.photos import MAX_BYTES
from storage.uow import Units

log = logging.getLogger(__name__)

# How long after the photo arrived it can still be fetched (WeChat's temporary media).
WINDOW = timedelta(days=3)
MAX_TRIES = 8
BATCH = 10


class MediaFetch:
    def __init__(
        self,
        units: Units,
        sources: Mapping[str, MediaSource],
        photos: PhotoKeeper,
        clock: Callable[[], datetime],
    ) -> None:
        self.units = units
        self.sources = dict(sources)
        self.photos = photos
        self.clock = clock

    async def run_once(self) -> int:
        """Fetch a batch of waiting photos; how many were tried (a retry waits for the next run)."""
        if not self.sources:
            return 0
        async with self.units() as uow:
            waiting = list(
                await uow.session.execute(
                    select(Attachment.id, Attachment.channel, Attachment.ref)
                    .where(
                        Attachment.file_key.is_(None),
                        Attachment.kind == "image",
                        Attachment.channel.in_(self.sources),
                        Attachment.created_at >= self.clock() - WINDOW,
                        Attachment.fetch_tries < MAX_TRIES,
                    )
                    # Photos not tried yet first: one that keeps failing does not hold them up.
                    .order_by(Attachment.fetch_tries, Attachment.id)
                    .limit(BATCH)
                )
            )
        done = 0
        for attachment_id, channel, ref in waiting:
            key, give_up = await self._fetch(self.sources[channel], ref)
            async with self.units() as uow:
                if key is not None:
                    # Another worker may have fetched it meanwhile: the first key stays.
                    await uow.session.execute(
                        update(Attachment)
                        .where(Attachment.id == attachment_id, Attachment.file_key.is_(None))
                        .values(file_key=key)
                    )
                else:
                    tries = Attachment.fetch_tries + 1 if not give_up else MAX_TRIES
                    await uow.session.execute(
                        update(Attachment)
                        .where(Attachment.id == attachment_id)
                        .values(fetch_tries=tries)
                    )
                await uow.commit()
            done += key is not None
        return done

    async def _fetch(self, source: MediaSource, ref: str) -> tuple[str | None, bool]:
        """The kept photo's key, or None and whether to give up on it."""
        try:
            data = await source.fetch_media(ref, MAX_BYTES)
            return await self.photos.keep(data), False
        except (MediaGone, UnusablePhoto) as exc:
            log.warning("a %s photo cannot be kept: %s", source.name, exc)
            return None, True
        except DeliveryFailed as exc:
            log.info("a %s photo was not fetched, will try again: %s", source.name, exc.reason)
            return None, False
