"""Signing in and out: one answer for wrong and unknown, CSRF, lockout, revocable sessions."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from storage.models import SignInThrottle, StaffSession, utcnow
from storage.signin_throttle import USER_RULE
from storage.staff import StaffAccounts, hash_password

from .conftest import PASSWORD, csrf_of, page_csrf, sign_in, signed_in, uow_of


async def test_the_sign_in_page_has_the_contract_labels(desk: TestClient) -> None:
    response = await desk.get("/desk")
    page = await response.text()
    assert response.status == 200
    for label in ("用户名", "密码", "登录"):
        assert label in page
    cookie = response.cookies["minyi_desk_signin"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/desk"


async def test_a_session_cookie_is_httponly_lax_and_lets_the_person_in(desk: TestClient) -> None:
    response = await sign_in(desk, "roads")
    assert response.status == 303 and response.headers["Location"] == "/desk/cases"
    cookie = response.cookies["minyi_desk"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    page = await (await desk.get("/desk/cases")).text()
    assert "城管局王芳" in page


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    aiohttp_client: object, sqlite_only: object
) -> None:
    from bot.app.web import create_app

    settings = sqlite_only.replace(public_url="https://minyi.example.org")  # type: ignore[attr-defined]
    client = await aiohttp_client(create_app(settings, workers=False))  # type: ignore[operator]
    response = await client.get("/desk")
    assert response.cookies["minyi_desk_signin"]["secure"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(desk: TestClient) -> None:
    wrong = await sign_in(desk, "roads", "not the password")
    unknown = await sign_in(desk, "nobody", "not the password")
    assert wrong.status == unknown.status == 401
    wrong_page = (await wrong.text()).replace('value="roads"', 'value="?"')
    unknown_page = (await unknown.text()).replace('value="nobody"', 'value="?"')
    assert wrong_page == unknown_page
    assert "用户名或密码不对" in wrong_page
    assert "minyi_desk" not in wrong.cookies


async def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions(desk: TestClient) -> None:
    await signed_in(desk, "roads")
    async with uow_of(desk) as uow:
        accounts = StaffAccounts(uow.session)
        account = await accounts.by_username("roads")
        assert account is not None
        await accounts.disable(account)
        await uow.commit()
    response = await desk.get("/desk/cases", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/desk?next=")
    assert (await sign_in(desk, "roads")).status == 401


async def test_a_new_password_ends_every_session_of_the_account(desk: TestClient) -> None:
    await signed_in(desk, "roads")
    async with uow_of(desk) as uow:
        accounts = StaffAccounts(uow.session)
        account = await accounts.by_username("roads")
        assert account is not None
        await accounts.set_password(account, await hash_password("another long password"))
        await uow.commit()
    assert (await desk.get("/desk/cases", allow_redirects=False)).status == 303
    assert (await sign_in(desk, "roads")).status == 401
    assert (await sign_in(desk, "roads", "another long password")).status == 303


async def test_signing_out_ends_the_session_on_the_server(desk: TestClient) -> None:
    response = await sign_in(desk, "roads")
    token = response.cookies["minyi_desk"].value
    csrf = await page_csrf(desk)
    out = await desk.post("/desk/signout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    async with uow_of(desk) as uow:
        assert await StaffAccounts(uow.session).resume(token, utcnow()) is None
    # The old cookie, replayed, no longer opens anything.
    desk.session.cookie_jar.update_cookies({"minyi_desk": token})
    assert (await desk.get("/desk/cases", allow_redirects=False)).status == 303


async def test_idle_and_absolute_expiry(desk: TestClient) -> None:
    token = (await sign_in(desk, "roads")).cookies["minyi_desk"].value
    async with uow_of(desk) as uow:
        accounts = StaffAccounts(uow.session)
        assert await accounts.resume(token, utcnow() + timedelta(hours=1)) is not None
        await uow.commit()
    async with uow_of(desk) as uow:
        accounts = StaffAccounts(uow.session)
        assert await accounts.resume(token, utcnow() + timedelta(hours=4)) is None  # idle 2 h
    desk.session.cookie_jar.clear()
    await sign_in(desk, "roads")
    async with uow_of(desk) as uow:
        # Busy all day: touched every hour, still ends at 12 h.
        await uow.session.execute(
            update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await uow.commit()
    assert (await desk.get("/desk/cases", allow_redirects=False)).status == 303


async def test_sign_in_without_the_forms_token_is_refused(desk: TestClient) -> None:
    await desk.get("/desk")
    response = await desk.post(
        "/desk/signin",
        data={"username": "roads", "password": PASSWORD, "csrf": "forged"},
        allow_redirects=False,
    )
    assert response.status == 403 and "minyi_desk" not in response.cookies


async def test_actions_without_the_sessions_csrf_token_are_refused(desk: TestClient) -> None:
    await signed_in(desk, "roads")
    for data in ({}, {"csrf": "forged"}, {"csrf": ""}):
        response = await desk.post("/desk/signout", data=data, allow_redirects=False)
        assert response.status == 403, data
        assert "页面已过期" in await response.text()
    assert (await desk.get("/desk/cases")).status == 200  # still signed in


async def test_five_wrong_passwords_lock_the_name_even_against_the_right_one(
    desk: TestClient,
) -> None:
    for _ in range(USER_RULE.failures):
        assert (await sign_in(desk, "roads", "guess guess guess")).status == 401
    locked = await sign_in(desk, "roads")
    assert locked.status == 429 and "尝试次数过多" in await locked.text()
    # Unknown names lock the same way: a lockout reveals nothing about which accounts exist.
    for _ in range(USER_RULE.failures):
        await sign_in(desk, "ghost", "guess guess guess")
    assert (await sign_in(desk, "ghost", "guess")).status == 429
    # Another person at the same address is not locked out by this.
    assert (await sign_in(desk, "parks")).status == 303


async def test_one_address_guessing_many_names_is_locked(desk: TestClient) -> None:
    for n in range(20):
        await sign_in(desk, f"name{n}", "guess guess guess")
    assert (await sign_in(desk, "parks")).status == 429


async def test_the_lockout_ends(desk: TestClient) -> None:
    for _ in range(USER_RULE.failures):
        await sign_in(desk, "roads", "guess guess guess")
    async with uow_of(desk) as uow:
        rows = list(await uow.session.scalars(select(SignInThrottle)))
        assert any(r.locked_until for r in rows)
        await uow.session.execute(
            update(SignInThrottle).values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await uow.commit()
    assert (await sign_in(desk, "roads")).status == 303


async def test_sign_in_returns_to_the_page_asked_for_and_never_elsewhere(desk: TestClient) -> None:
    asked = await desk.get("/desk/stats", allow_redirects=False)
    assert asked.headers["Location"] == "/desk?next=/desk/stats"
    page = await (await desk.get("/desk?next=/desk/stats")).text()
    response = await desk.post(
        "/desk/signin",
        data={
            "username": "roads",
            "password": PASSWORD,
            "csrf": csrf_of(page),
            "next": "/desk/stats",
        },
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/desk/stats"
    desk.session.cookie_jar.clear()
    page = await (await desk.get("/desk?next=//evil.example")).text()
    assert 'name="next" value="/desk/cases"' in page


async def test_every_desk_page_carries_the_security_headers(desk: TestClient) -> None:
    await signed_in(desk, "roads")
    for path in (
        "/desk",
        "/desk/cases",
        "/desk/stats",
        "/desk/cases/XF20260101-AAAAAA",
        "/desk/static/desk.css",
    ):
        response = await desk.get(path, allow_redirects=False)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
