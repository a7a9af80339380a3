"""What the desk needs from the running app, taken in one place so the wiring can change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from aiohttp import web

from bot.app.appkeys import RUNTIME
from bot.backoffice.deadlines import LegalDeadlines
from bot.backoffice.surveys import SurveyRules
from conversation.catalog import Catalog
from conversation.office import OfficeConfig
from storage.crypto import PiiCipher
from storage.db import Database
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class DeskServices:
    db: Database
    cipher: PiiCipher
    office: OfficeConfig
    deadlines: LegalDeadlines
    surveys: SurveyRules
    tz: tzinfo
    https: bool  # MINYI_PUBLIC_URL is https: cookies are Secure even behind a plain-HTTP proxy
    kick: Callable[[], None]  # wake the workers: a step queued a notice for the citizen

    @property
    def catalog(self) -> Catalog:
        return self.office.catalog

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.cipher)


def desk_services(request: web.Request) -> DeskServices:
    """The one place the desk reaches into the app."""
    runtime = request.config_dict[RUNTIME]
    return DeskServices(
        db=runtime.db,
        cipher=runtime.cipher,
        office=runtime.office,
        deadlines=runtime.deadlines,
        surveys=runtime.surveys,
        tz=runtime.settings.tz(),
        https=(runtime.settings.public_url or "").startswith("https:"),
        kick=runtime.kick,
    )
