"""What the desk needs from the running app, taken in one place so the wiring can change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from aiohttp import web

from channels.base import SharedCache
from channels.staff import StaffHandler
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.surveys import SurveyRules
from conversation.catalog import Catalog
from conversation.office import OfficeConfig
from storage.crypto import PiiCipher
from storage.files import FileStore
from storage.live import LocalBus
from storage.uow import UnitOfWork, Units


@dataclass(frozen=True)
class DeskServices:
    """What the desk uses, given when the app is built (bot/app/web.py)."""

    units: Units
    office: OfficeConfig
    deadlines: LegalDeadlines
    surveys: SurveyRules
    https: bool  # MINYI_PUBLIC_URL is https: cookies are Secure even behind a plain-HTTP proxy
    staff_actions: StaffHandler  # 认领 / 发送 / 结束 in a live conversation (bot/backoffice)
    live: LocalBus  # "thread N changed" notes, for the inbox's live updates
    shared: SharedCache  # a form posted twice (a reload) is taken once
    files: FileStore  # citizens' photos (storage/files.py)

    async def seen_once(self, key: str) -> bool:
        """True the first time `key` is seen (for a day)."""
        return await self.shared.add(f"desk:once:{key}", "1", 24 * 3600.0)

    @property
    def catalog(self) -> Catalog:
        return self.office.catalog

    @property
    def cipher(self) -> PiiCipher:
        return self.units.cipher

    @property
    def tz(self) -> tzinfo:
        return self.units.tz

    def uow(self) -> UnitOfWork:
        return self.units()


DESK = web.AppKey("desk", DeskServices)


def desk_services(request: web.Request) -> DeskServices:
    """The one place the desk reaches into the app."""
    return request.config_dict[DESK]
