"""The desk under test: the whole app, staff accounts, cases filed straight into storage."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.app.wiring import Minyi
from conversation.cases.progress import Progress
from storage.lifecycle import record_progress
from storage.models import Case, utcnow
from storage.staff import StaffAccounts, hash_password
from storage.uow import UnitOfWork

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
# Accounts every desk test can sign in with.
ACCOUNTS = {
    "intake": ("前台小刘", "staff", ""),
    "parks": ("园林局小张", "staff", "园林局"),
    "roads": ("城管局王芳", "staff", "城管局"),
    "boss": ("李主任", "leader", ""),
    "root": ("系统管理员", "admin", ""),
}
_hashes: dict[str, str] = {}


@pytest.fixture
async def desk(aiohttp_client: Any, database_settings: Settings) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(database_settings, workers=False))
    await seed_accounts(client)
    return client


async def seed_accounts(client: TestClient) -> None:
    if PASSWORD not in _hashes:
        _hashes[PASSWORD] = await hash_password(PASSWORD)  # argon2 is slow on purpose: once
    async with uow_of(client) as uow:
        accounts = StaffAccounts(uow.session)
        for username, (name, role, department) in ACCOUNTS.items():
            await accounts.add(username, name, role, _hashes[PASSWORD], department=department)
        await uow.commit()


def runtime_of(client: TestClient) -> Minyi:
    return client.server.app[MINYI]


def uow_of(client: TestClient) -> UnitOfWork:
    runtime = runtime_of(client)
    return UnitOfWork(runtime.db, runtime.cipher)


async def file_case(
    client: TestClient,
    *,
    phone: str = "+8613800138000",
    category: str = "city",
    channel: str = "webchat",
    steps: tuple[dict[str, Any], ...] = (),
    description: str = "小区门口的路灯坏了一个多月，晚上很黑。",
) -> str:
    """A case as the engine files it (citizen, identity, timeline), then back-office steps."""
    runtime = runtime_of(client)
    async with uow_of(client) as uow:
        identity = await uow.people.identity(channel, uuid.uuid4().hex)
        citizen = await uow.people.citizen(phone, "张三") if phone else None
        now = utcnow()
        case = Case(
            origin=uuid.uuid4().hex,
            kind="petition",
            category=category,
            description=description,
            location_text="幸福路12号",
            channel=channel,
            identity_id=identity.id,
            citizen_id=citizen.id if citizen else None,
            status="submitted",
            created_at=now,
            updated_at=now,
            accept_due_at=runtime.deadlines.acceptance_due(now),
        )
        uow.cases.set_contact(case, "张三" if phone else "", phone)
        await uow.cases.add(case, now.date(), [])
        await uow.events.append(case, "submitted", f"citizen:{channel}", {}, at=now, first=True)
        for body in steps:
            await record_progress(uow, case, Progress.from_json(body), runtime.deadlines, utcnow())
        await uow.commit()
        return case.code


ASSIGN_PARKS: tuple[dict[str, Any], ...] = (
    {"type": "accepted"},
    {"type": "assigned", "department": "园林局"},
)
ASSIGN_ROADS: tuple[dict[str, Any], ...] = (
    {"type": "accepted"},
    {"type": "assigned", "department": "城管局"},
)


def csrf_of(page: str) -> str:
    found = CSRF_RE.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    """The sign-in form as a browser fills it; returns the answer (redirects not followed)."""
    page = await (await client.get("/desk")).text()
    return await client.post(
        "/desk/signin",
        data={"username": username, "password": password, "csrf": csrf_of(page)},
        allow_redirects=False,
    )


async def signed_in(client: TestClient, username: str) -> TestClient:
    response = await sign_in(client, username)
    assert response.status == 303, await response.text()
    return client


async def page_csrf(client: TestClient, path: str = "/desk/cases") -> str:
    return csrf_of(await (await client.get(path)).text())


DEPARTMENTS = ("城管局", "园林局", "水务局", "住建局", "交通局")
DESCRIPTIONS = (
    "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。",
    "公园里的树枝被大风刮断，压在人行道上，请尽快清理。",
    "楼下的下水道堵了，污水漫到路面，气味很大。",
    "施工工地夜里十二点还在打桩，影响休息。",
    "公交站牌被撞坏了，等车的人看不到线路。",
)


async def seed_office(client: TestClient, cases: int = 40) -> list[str]:
    """A few months of an office's work: cases in every state, rated, some late, over weeks."""
    import random

    rng = random.Random(2026)
    codes = []
    for n in range(cases):
        department = DEPARTMENTS[n % len(DEPARTMENTS)]
        stage = rng.choice(("new", "assigned", "closed", "closed", "closed"))
        steps: list[dict[str, Any]] = []
        if stage != "new":
            steps = [{"type": "accepted"}, {"type": "assigned", "department": department}]
        if stage == "closed":
            steps += [{"type": "replied", "note": "已办理完毕。"}, {"type": "closed"}]
        code = await file_case(
            client,
            phone=f"+86139{rng.randrange(10**7, 10**8)}",
            category=rng.choice(("city", "housing", "environment", "public_services")),
            channel=rng.choice(("wechat", "wechat", "webchat", "sms")),
            steps=tuple(steps),
            description=DESCRIPTIONS[n % len(DESCRIPTIONS)],
        )
        async with uow_of(client) as uow:
            case = await uow.cases.by_code(code, for_update=True)
            assert case is not None
            case.created_at = utcnow() - timedelta(
                days=rng.randrange(0, 70), hours=rng.randrange(24)
            )
            if stage == "closed":
                score = rng.choice((1, 1, 1, 2, 2, 3) if n % 5 != 3 else (2, 3, 3))
                case.rating_score, case.rating_scale = score, 3
                case.rating_label = ("满意", "基本满意", "不满意")[score - 1]
                case.rated_at = utcnow()
                if n % 5 == 3 or rng.random() < 0.15:
                    case.finish_due_at = utcnow() - timedelta(days=1)  # closed late
            if rng.random() < 0.15:
                case.accept_due_at = utcnow() - timedelta(days=1)  # decided late, or not at all
            await uow.commit()
        codes.append(code)
    return codes
