"""A lifecycle step from a desk button: checked, taken under the person's name, or refused in words."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.desk import cases
from bot.desk.keys import FORM, STAFF
from bot.desk.policy import Staff, may_take
from bot.desk.progress import LIMITS, TRANSITIONS, IllegalTransition, Progress, take_step
from bot.desk.render import LANGUAGE, render
from bot.desk.services import desk_services
from bot.desk.steps import STATUS_STEPS, read_fields
from conversation.cases.progress import InvalidProgress
from conversation.cases.routing import routed
from conversation.ports import Conflict
from storage.escalation import escalate
from storage.models import Case, CaseEvent, utcnow
from storage.repeats import link_duplicate


async def act(request: web.Request) -> web.Response:
    services = desk_services(request)
    staff: Staff = request[STAFF]
    code = request.match_info["code"]
    form = await request.post()
    step_type = str(form.get("step", ""))
    if step_type not in TRANSITIONS or not may_take(staff, step_type):
        return render(request, "message.html", status=403, message_key="desk.forbidden")
    values, problem = read_fields(form, step_type)
    if problem is not None:
        key, params = problem
        if "field" in params:
            params = {**params, "field": services.catalog.text(LANGUAGE, params["field"])}
        request[FORM] = values
        return await cases.show_case(
            request,
            code,
            status=422,
            problem=services.catalog.text(LANGUAGE, key, **params),
            open_step=step_type,
        )
    try:
        step = routed(
            Progress.from_json({"type": step_type, **values}), services.office.departments
        )
    except InvalidProgress:
        request[FORM] = {k: v for k, v in values.items() if isinstance(v, str)}
        return await cases.show_case(
            request,
            code,
            status=422,
            problem=services.catalog.text(
                LANGUAGE, "desk.invalid.department", name=str(values.get("department", ""))
            ),
            open_step=step_type,
        )
    w = cases.words(services)
    conflict = ""
    async with services.uow() as uow:
        try:
            case = await cases.load_case(uow, staff, code, for_update=True)
        except web.HTTPNotFound:
            return render(request, "message.html", status=404, message_key="desk.not_found")
        if case.status != form.get("seen"):
            last = await _last_move(uow.session, case)
            what = w.event(last) if last is not None else w.status(case.status)
            conflict = w.t("desk.conflict.moved", what=what, status=w.status(case.status))
        else:
            try:
                await take_step(uow, case, step, staff, services, utcnow())
                await uow.commit()
            except IllegalTransition:
                if step_type == "extended" and case.extended_days:
                    conflict = w.t("desk.conflict.extended_once")
                else:
                    conflict = w.t(
                        "desk.conflict.illegal",
                        status=w.status(case.status),
                        verb=w.verb(step_type),
                    )
            except Conflict:  # someone's step took the same place on the timeline first
                conflict = w.t("desk.conflict.busy")
    if conflict:
        return await cases.show_case(request, code, status=409, problem=conflict)
    raise web.HTTPSeeOther(f"/desk/cases/{case.code}?done={step_type}")


async def _last_move(session: AsyncSession, case: Case) -> CaseEvent | None:
    """The latest step that changed (or may have changed) the status."""
    return await session.scalar(
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.type.in_([*STATUS_STEPS, "rated", "review_requested"]),
        )
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )


async def link(request: web.Request) -> web.Response:
    """关联: staff say this case is the same matter as another person's (a possible duplicate
    the case page showed); both stay as they are, the link is on the timeline."""
    services = desk_services(request)
    staff: Staff = request[STAFF]
    if not may_take(staff, "note"):
        return render(request, "message.html", status=403, message_key="desk.forbidden")
    form = await request.post()
    async with services.uow() as uow:
        try:
            case = await cases.load_case(uow, staff, request.match_info["code"], for_update=True)
            other = await cases.load_case(uow, staff, str(form.get("to", "")))
        except web.HTTPNotFound:
            return render(request, "message.html", status=404, message_key="desk.not_found")
        if other.id != case.id:
            await link_duplicate(uow, case, other, staff.actor, staff.display_name, utcnow())
            await uow.commit()
    raise web.HTTPSeeOther(f"/desk/cases/{case.code}?done=linked")


async def escalate_case(request: web.Request) -> web.Response:
    """督办 by a leader: the case one level up, with what is required, its people alerted."""
    services = desk_services(request)
    staff: Staff = request[STAFF]
    if staff.role != "leader":
        return render(request, "message.html", status=403, message_key="desk.forbidden")
    form = await request.post()
    code = request.match_info["code"]
    reason = str(form.get("reason", "")).strip()
    if not reason or len(reason) > LIMITS["reason"]:
        field = services.catalog.text(LANGUAGE, "desk.field.escalate_reason")
        key = "desk.invalid" if not reason else "desk.invalid.long"
        problem = services.catalog.text(LANGUAGE, key, field=field, max=LIMITS["reason"])
        return await cases.show_case(request, code, status=422, problem=problem)
    async with services.uow() as uow:
        try:
            case = await cases.load_case(uow, staff, code, for_update=True)
        except web.HTTPNotFound:
            return render(request, "message.html", status=404, message_key="desk.not_found")
        facts = {"reason": reason, "staff": staff.username, "staff_name": staff.display_name}
        raised = await escalate(
            uow,
            case,
            services.office.escalation,
            utcnow(),
            cause="staff",
            facts=facts,
            actor=staff.actor,
        )
        await uow.commit()
    if raised is None:
        problem = services.catalog.text(LANGUAGE, "desk.escalate.top")
        return await cases.show_case(request, code, status=409, problem=problem)
    raise web.HTTPSeeOther(f"/desk/cases/{case.code}?done=escalate")
