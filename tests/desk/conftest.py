"""The desk under test: the whole app, staff accounts, cases filed straight into storage."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.appkeys import RUNTIME
from bot.app.runtime import Runtime
from bot.app.settings import Settings
from bot.app.web import create_app
from bot.backoffice.lifecycle import Progress, record_progress
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
    if PASSWORD not in _hashes:
        _hashes[PASSWORD] = await hash_password(PASSWORD)  # argon2 is slow on purpose: once
    async with uow_of(client) as uow:
        accounts = StaffAccounts(uow.session)
        for username, (name, role, department) in ACCOUNTS.items():
            await accounts.add(username, name, role, _hashes[PASSWORD], department=department)
        await uow.commit()
    return client


def runtime_of(client: TestClient) -> Runtime:
    return client.server.app[RUNTIME]


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
