"""A case's photos on the desk: served from Minyi's file store to the signed-in staff member
who may see the case (the same scope as the case page), never to anyone else."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from bot.desk.cases import load_case
from bot.desk.keys import STAFF
from bot.desk.policy import Staff
from bot.desk.services import desk_services
from storage.models import Attachment
from storage.photos import thumbnail_key


async def photo(request: web.Request) -> web.Response:
    """`/desk/cases/{code}/photos/{id}` (`?size=thumb` for the thumbnail)."""
    services = desk_services(request)
    staff: Staff = request[STAFF]
    number = request.match_info["attachment"]
    if not number.isdigit() or len(number) > 12:
        raise web.HTTPNotFound()
    async with services.uow() as uow:
        case = await load_case(uow, staff, request.match_info["code"])
        key = await uow.session.scalar(
            select(Attachment.file_key).where(
                Attachment.id == int(number), Attachment.case_id == case.id
            )
        )
    if not key:
        raise web.HTTPNotFound()
    if request.query.get("size") == "thumb":
        key = thumbnail_key(key)
    stored = await services.files.get(key)
    if stored is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=stored.data,
        content_type=stored.content_type,
        # The desk's headers say no-store: personal data is kept by no cache.
        headers={"Content-Disposition": "inline"},
    )
