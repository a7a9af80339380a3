"""The case list and one case, as the signed-in person may see them."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from bot.desk.case_list import BadSearch, CaseFilter, find_cases
from bot.desk.keys import FORM, STAFF
from bot.desk.policy import Staff, may_take, visible_cases
from bot.desk.progress import STATUSES
from bot.desk.render import LANGUAGE, render
from bot.desk.services import DeskServices, desk_services
from bot.desk.steps import FIELDS, ORDER, offered_steps
from bot.desk.wording import Words
from conversation.cases.lifecycle import FINISHED
from conversation.cases.progress import OUTCOMES
from conversation.codes import CASE_CODE_RE
from conversation.similarity import similarity
from storage.models import Case, utcnow
from storage.repeats import possible_duplicates
from storage.routing import co_departments
from storage.staff import StaffAccounts
from storage.timeline import verify_chain
from storage.uow import UnitOfWork

CHANNELS = ("wechat", "telegram", "webchat", "sms", "api")
STEP_NAMES = frozenset({*ORDER, "linked", "escalate"})


def words(services: DeskServices) -> Words:
    return Words(services.catalog.for_language(LANGUAGE), services.office, services.tz)


async def case_list(request: web.Request) -> web.Response:
    services = desk_services(request)
    staff: Staff = request[STAFF]
    wanted = CaseFilter.from_query(request.query)
    now = utcnow()
    problem = ""
    async with services.uow() as uow:
        try:
            cases, next_before = await find_cases(
                uow.session, visible_cases(staff), wanted, services.cipher, now
            )
        except BadSearch:
            cases, next_before, problem = [], None, "desk.cases.bad_search"
        tree = services.office.departments.units
        departments = (
            [d.code for d in tree] if tree else await StaffAccounts(uow.session).departments()
        )
        w = words(services)
        rows = []
        for case in cases:
            due = w.deadlines(case, now)
            rows.append({"case": case, "due": due[0] if due and due[0][1] else None})
        return render(
            request,
            "cases.html",
            status=422 if problem else 200,
            rows=rows,
            w=w,
            wanted=wanted,
            problem=problem,
            statuses=STATUSES,
            departments=departments,
            categories=services.office.categories,
            channels=CHANNELS,
            next_page=wanted.query_string(before=next_before) if next_before else None,
        )


async def load_case(uow: UnitOfWork, staff: Staff, code: str, *, for_update: bool = False) -> Case:
    """The case, only through the person's scope: outside it and unknown look the same (404)."""
    code = code.upper()
    if not CASE_CODE_RE.fullmatch(code):
        raise web.HTTPNotFound()
    query = select(Case).where(Case.code == code, visible_cases(staff))
    if for_update:
        query = query.with_for_update()
    case = await uow.session.scalar(query)
    if case is None:
        raise web.HTTPNotFound()
    return case


async def case_page(request: web.Request) -> web.Response:
    return await show_case(request, request.match_info["code"])


async def show_case(
    request: web.Request,
    code: str,
    *,
    status: int = 200,
    notice: str = "",
    problem: str = "",
    open_step: str = "",
) -> web.Response:
    services = desk_services(request)
    staff: Staff = request[STAFF]
    now = utcnow()
    async with services.uow() as uow:
        try:
            case = await load_case(uow, staff, code)
        except web.HTTPNotFound:
            return render(request, "message.html", status=404, message_key="desk.not_found")
        events = await uow.events.events(case)
        attachments = await uow.cases.attachments(case)
        name, phone = uow.cases.contact(case)
        departments = await StaffAccounts(uow.session).departments()
        co = await co_departments(uow.session, case)
        linked = {str(e.data.get("to")) for e in events if e.type == "linked"}
        duplicates = [
            (other, round(score), other.code in linked)
            for other, score in await possible_duplicates(
                uow, case, services.office.repeats, similarity, visible_cases(staff)
            )
        ]
        w = words(services)
        chain = verify_chain(case.code, events)
        done = request.query.get("done", "")
        if not notice and done in STEP_NAMES:
            notice = w.t("desk.done", verb=w.verb(done))
        return render(
            request,
            "case.html",
            status=status,
            case=case,
            w=w,
            contact={"name": name, "phone": phone},
            attachments=attachments,
            timeline=[(e, w.when(e.at), w.event(e)) for e in events],
            chain=chain,
            deadlines=w.deadlines(case, now),
            steps=offered_steps(staff, case),
            fields=FIELDS,
            open_step=request.query.get("do", "") or open_step,
            departments=departments,
            tree=services.office.departments.units,
            co=co,
            duplicates=duplicates,
            may_link=may_take(staff, "note"),
            may_escalate=staff.role == "leader"
            and case.level < services.office.escalation.top
            and case.status not in FINISHED,
            outcomes=OUTCOMES,
            notice=notice,
            problem=problem,
            form=request.get(FORM, {}),
        )
