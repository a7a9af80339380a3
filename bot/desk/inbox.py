"""在线对话 on the desk: the conversations waiting for a person and those staff have, one
conversation with its messages, and 认领 / 发送 / 结束 — the same staff threads the duty group
and the WeCom app see (bot/backoffice/staff_threads.py does the work for all three)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import or_, select

from bot.desk.keys import STAFF
from bot.desk.policy import Staff, visible_cases
from bot.desk.render import render
from bot.desk.services import DeskServices, desk_services
from bot.desk.wording import Words
from channels.staff import StaffAction, StaffMember
from storage.crypto import mask_phone
from storage.models import Case, StaffThread
from storage.staff_threads import messages
from storage.uow import UnitOfWork

SHOWN = 100
WORDS_LIMIT = 2000
# Who may talk with citizens: staff and leaders (administrators manage accounts).
TALKERS = frozenset({"staff", "leader"})
ACTIONS = {"claim": "claim", "send": "say", "end": "done"}


@dataclass(frozen=True)
class ThreadView:
    id: int
    case_code: str
    category: str
    channel: str
    phone: str  # masked
    claimed_by: str
    mine: bool
    done: bool
    last: str
    at: datetime


def member(staff: Staff) -> StaffMember:
    return StaffMember(f"desk:{staff.username}", staff.display_name)


async def visible_thread(uow: UnitOfWork, staff: Staff, thread_id: int) -> StaffThread | None:
    """The thread when this person may see it: its case is in their scope (threads before any
    case belong to the intake desk, which everyone shares)."""
    return await uow.session.scalar(
        select(StaffThread)
        .outerjoin(Case, Case.id == StaffThread.case_id)
        .where(StaffThread.id == thread_id, or_(Case.id.is_(None), visible_cases(staff)))
    )


async def _view(uow: UnitOfWork, thread: StaffThread, staff: Staff, words: Words) -> ThreadView:
    case = await uow.session.get(Case, thread.case_id) if thread.case_id else None
    said = await messages(uow, thread.id, limit=1)
    phone = uow.cases.contact(case)[1] if case else ""
    return ThreadView(
        id=thread.id,
        case_code=case.code if case else "",
        category=words.category(case.category) if case else "",
        channel=words.channel(thread.channel),
        phone=mask_phone(phone) if phone else "",
        claimed_by=thread.claimed_by,
        mine=thread.claimed_user == member(staff).user_id,
        done=thread.done_at is not None,
        last=said[-1][2][:80] if said else "",
        at=thread.claimed_at or thread.created_at,
    )


async def inbox(request: web.Request) -> web.Response:
    services, staff = desk_services(request), request[STAFF]
    words = _words(services)
    async with services.uow() as uow:
        rows = list(
            await uow.session.scalars(
                select(StaffThread)
                .outerjoin(Case, Case.id == StaffThread.case_id)
                .where(StaffThread.done_at.is_(None), or_(Case.id.is_(None), visible_cases(staff)))
                .order_by(StaffThread.id.desc())
                .limit(SHOWN)
            )
        )
        threads = [await _view(uow, row, staff, words) for row in rows]
    template = "inbox_list.html" if request.query.get("part") == "list" else "inbox.html"
    return render(request, template, threads=threads, w=words)


async def thread_page(request: web.Request, notices: tuple[str, ...] = ()) -> web.Response:
    services, staff = desk_services(request), request[STAFF]
    words = _words(services)
    thread_id = _thread_id(request)
    async with services.uow() as uow:
        row = await visible_thread(uow, staff, thread_id)
        if row is None:
            raise web.HTTPNotFound(text=services.catalog.text("zh", "desk.not_found"))
        view = await _view(uow, row, staff, words)
        said = await messages(uow, thread_id)
    template = "thread_messages.html" if request.query.get("part") == "messages" else "thread.html"
    return render(
        request,
        template,
        thread=view,
        said=[(author, name, *split_photos(text)) for author, name, text in said],
        notices=notices,
        may_talk=staff.role in TALKERS,
        canned=services.office.staff.canned,
        nonce=secrets.token_urlsafe(12),
        w=words,
    )


# A photo the citizen sent in the thread, as the relay links it (storage/staff_threads.py).
PHOTO_PATH = re.compile(r" ?(/desk/cases/XF\d{8}-[0-9A-Z]{6}/photos/\d{1,12})")


def split_photos(text: str) -> tuple[str, list[str]]:
    """The words, and the desk paths of the photos they link (shown as thumbnails)."""
    return PHOTO_PATH.sub("", text), PHOTO_PATH.findall(text)


async def act(request: web.Request) -> web.Response:
    """认领, 发送 (a typed reply or a 常用语) or 结束; the answer is the conversation again."""
    services, staff = desk_services(request), request[STAFF]
    form = await request.post()
    kind = ACTIONS.get(str(form.get("do", "")))
    if kind is None or staff.role not in TALKERS:
        raise web.HTTPForbidden(text=services.catalog.text("zh", "desk.forbidden"))
    thread_id = _thread_id(request)
    async with services.uow() as uow:
        if await visible_thread(uow, staff, thread_id) is None:
            raise web.HTTPNotFound(text=services.catalog.text("zh", "desk.not_found"))
    text = str(form.get("text", "")).strip()[:WORDS_LIMIT]
    if kind == "say" and not text:
        return await thread_page(request, (services.catalog.text("zh", "desk.thread.empty_text"),))
    # The form's nonce names the action: a reload that posts it again is taken once.
    nonce = str(form.get("nonce", ""))[:40] or secrets.token_urlsafe(12)
    said: list[str] = []

    async def answer(words: str, reply_to: str = "") -> str:
        said.append(words)
        return ""

    key = f"desk:{staff.username}:{nonce}"
    action = StaffAction(
        kind,  # type: ignore[arg-type]
        member(staff),
        key,
        thread=thread_id,
        text=text,
        front="desk",
    )
    if await services.seen_once(key):
        await services.staff_actions(action, answer)
    return await thread_page(request, tuple(said))


def _thread_id(request: web.Request) -> int:
    raw = request.match_info["thread"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


def _words(services: DeskServices) -> Words:
    return Words(services.catalog.for_language("zh"), services.office, services.tz)
