"""The detail line of case-work alerts: a 退回 back to who routed it, a leader's 批示 for the
handling departments, a 督办 level with its reason and the people it is for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from conversation.cases.escalation import HANDLING
from conversation.casework_texts import escalation_reason
from conversation.catalog import Texts
from conversation.office import OfficeConfig
from storage.models import Case, StaffAccount
from storage.routing import co_departments
from storage.uow import UnitOfWork

TOPICS = frozenset({"returned", "instructed", "escalated"})


async def casework_detail(
    uow: UnitOfWork,
    topic: str,
    data: dict[str, Any],
    case: Case | None,
    office: OfficeConfig,
    t: Texts,
) -> str:
    names = office.departments.name
    handling = ""
    if case is not None:
        codes = [case.department, *await co_departments(uow.session, case)]
        handling = "、".join(names(code) for code in codes if code)
    if topic == "returned":
        to = str(data.get("back_to") or "")
        return t(
            "staff.alert.returned_detail",
            to=await _display(uow, to) if to else t("desk.who.backoffice"),
            department=names(str(data.get("from_department") or "")) or "—",
            reason=data.get("reason", ""),
        )
    if topic == "instructed":
        return t(
            "staff.alert.instructed_detail",
            who=data.get("staff_name") or data.get("staff") or "",
            note=data.get("note", ""),
            departments=handling or "—",
        )
    targets = []
    for target in data.get("targets", []):
        if target == HANDLING:
            targets.append(f"{t('staff.alert.targets.handling')}（{handling or '—'}）")
        elif str(target).startswith("role:"):
            role = str(target).removeprefix("role:")
            targets.append(t("staff.alert.targets.role", role=t(f"desk.role.{role}")))
        else:
            targets.append(await _display(uow, str(target)))
    return t(
        "staff.alert.escalated_detail",
        level=data.get("level", ""),
        name=data.get("level_name", ""),
        reason=escalation_reason(t, data),
        targets="、".join(targets) or "—",
    )


async def _display(uow: UnitOfWork, username: str) -> str:
    name = await uow.session.scalar(
        select(StaffAccount.display_name).where(StaffAccount.username == username)
    )
    return f"{name}（{username}）" if name else username


async def addressees(
    uow: UnitOfWork, topic: str, data: dict[str, Any], case: Case | None
) -> tuple[str, ...]:
    """Who a case-work alert is for, as front-end ids (`wecom:<userid>`): a 督办 level's
    targets, the handling departments' staff for a 批示, whoever routed a returned case."""
    if topic == "escalated":
        targets = [str(t) for t in data.get("targets", [])]
    elif topic == "instructed":
        targets = [HANDLING]
    elif topic == "returned" and data.get("back_to"):
        targets = [str(data["back_to"])]
    else:
        return ()
    departments = []
    if HANDLING in targets and case is not None:
        departments = [case.department, *await co_departments(uow.session, case)]
    roles = [t.removeprefix("role:") for t in targets if t.startswith("role:")]
    names = [t for t in targets if t != HANDLING and not t.startswith("role:")]
    rows = await uow.session.scalars(
        select(StaffAccount.wecom_userid)
        .where(
            StaffAccount.disabled_at.is_(None),
            StaffAccount.wecom_userid.is_not(None),
            or_(
                StaffAccount.username.in_(names),
                StaffAccount.role.in_(roles),
                StaffAccount.department.in_([d for d in departments if d]),
            ),
        )
        .order_by(StaffAccount.id)
    )
    return tuple(f"wecom:{userid}" for userid in rows if userid)
