"""Signing in and out: one answer for a wrong password and an unknown user, and a lockout."""

from __future__ import annotations

import hmac
import math
import secrets

from aiohttp import web

from bot.desk.guard import SESSION_COOKIE, see_other, set_cookie
from bot.desk.keys import SESSION_TOKEN, STAFF
from bot.desk.render import render
from bot.desk.services import desk_services
from storage.models import utcnow
from storage.signin_throttle import clear, locked_until, record_failure, throttle_keys, user_key
from storage.staff import StaffAccounts, verify_password

# Before there is a session, the sign-in form is protected by a token that must match a cookie
# of our own (double submit), so no other site can sign a browser into an account.
SIGNIN_COOKIE = "minyi_desk_signin"
MAX_FIELD = 1024


async def signin_page(request: web.Request) -> web.StreamResponse:
    if STAFF in request:
        raise web.HTTPSeeOther(_next(request.query.get("next", "")))
    message = "desk.signin.signed_out" if "bye" in request.query else ""
    return _form(request, message=message)


async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password, given = (
        str(form.get(k, ""))[:MAX_FIELD] for k in ("username", "password", "csrf")
    )
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _form(request, status=403, message="desk.csrf", target=str(form.get("next", "")))
    services = desk_services(request)
    now = utcnow()
    keys = throttle_keys(username, request.remote or "")
    stored: str | None = None
    account_id = 0
    async with services.uow() as uow:
        until = await locked_until(uow.session, list(keys), now)
        account = None if until else await StaffAccounts(uow.session).by_username(username)
        if account is not None and account.disabled_at is None:
            stored, account_id = account.password_hash, account.id
    if until is not None:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        return _form(
            request,
            status=429,
            message="desk.signin.locked",
            minutes=minutes,
            username=username,
            target=str(form.get("next", "")),
        )
    # The hash is checked even for an unknown or disabled name: the same answer, in the same time.
    ok = await verify_password(stored, password)
    async with services.uow() as uow:
        if not ok:
            for key, rule in keys.items():
                await record_failure(uow.session, key, rule, now)
            await uow.commit()
            return _form(
                request,
                status=401,
                message="desk.signin.wrong",
                username=username,
                target=str(form.get("next", "")),
            )
        accounts = StaffAccounts(uow.session)
        await clear(uow.session, user_key(username))
        await accounts.sweep(now)
        token = await accounts.start_session(account_id, now)
        await uow.commit()
    response = see_other(_next(str(form.get("next", ""))))
    set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(SIGNIN_COOKIE, path="/desk")
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    async with desk_services(request).uow() as uow:
        await StaffAccounts(uow.session).end_session(request[SESSION_TOKEN])
        await uow.commit()
    response = see_other("/desk?bye=1")
    response.del_cookie(SESSION_COOKIE, path="/desk")
    return response


def _form(
    request: web.Request,
    *,
    status: int = 200,
    message: str = "",
    username: str = "",
    minutes: int = 0,
    target: str = "",
) -> web.Response:
    token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "signin.html",
        status=status,
        message_key=message,
        minutes=minutes,
        username=username,
        signin_token=token,
        next=_next(target or request.query.get("next", "")),
    )
    set_cookie(request, response, SIGNIN_COOKIE, token)
    return response


def _next(target: str) -> str:
    """Back to the page that asked for sign-in: only a desk path, never another site."""
    if target.startswith("/desk/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/desk/cases"
