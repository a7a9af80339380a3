"""Who staff are on each front end: a WeCom userid is a staff account's (`--wecom`), a member
of the Telegram duty group is who Telegram says (the group's membership is the check there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from channels.staff import StaffMember
from storage.models import StaffAccount
from storage.uow import Units

WECOM = "wecom:"


class StaffDirectory:
    def __init__(self, units: Units) -> None:
        self.units = units

    async def resolve(self, member: StaffMember) -> StaffMember | None:
        if not member.user_id.startswith(WECOM):
            return member
        name = await self._name(member.user_id.removeprefix(WECOM))
        return StaffMember(member.user_id, name) if name is not None else None

    def roster(self, front: str) -> Callable[[], Awaitable[list[str]]]:
        """The staff to alert on a front end, by their id there: every active account that has
        one (a later rule may narrow it to the case's department or the duty rota)."""

        async def on_duty() -> list[str]:
            if front != "wecom":
                return []
            async with self.units() as uow:
                rows = await uow.session.scalars(
                    select(StaffAccount.wecom_userid)
                    .where(
                        StaffAccount.wecom_userid.is_not(None), StaffAccount.disabled_at.is_(None)
                    )
                    .order_by(StaffAccount.id)
                )
                return [userid for userid in rows if userid]

        return on_duty

    async def _name(self, wecom_userid: str) -> str | None:
        """The display name of the active account with this WeCom userid."""
        async with self.units() as uow:
            return await uow.session.scalar(
                select(StaffAccount.display_name).where(
                    StaffAccount.wecom_userid == wecom_userid, StaffAccount.disabled_at.is_(None)
                )
            )
