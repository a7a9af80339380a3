"""Every desk request passes here: security headers, the signed-in session, and CSRF."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.desk.keys import CSRF, SESSION_TOKEN, STAFF
from bot.desk.policy import Staff
from bot.desk.render import render
from bot.desk.services import desk_services
from storage.models import utcnow
from storage.staff import StaffAccounts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_COOKIE = "minyi_desk"
# Routes anyone may reach: the sign-in page and form, and the static files.
PUBLIC = frozenset({"desk.signin", "desk.signin_post", "desk.static"})
HEADERS = {
    # No inline script anywhere; photos may come from the channels' own hosts.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    if response.prepared:
        return response  # a stream (the live updates) sent its headers itself
    response.headers.update(HEADERS)
    if request.match_info.route.name != "desk.static":
        response.headers["Cache-Control"] = "no-store"  # pages hold personal data
    return response


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resume the session from its cookie; anything but the public routes needs one, and every
    POST carries the session's CSRF token."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        async with desk_services(request).uow() as uow:
            resumed = await StaffAccounts(uow.session).resume(token, utcnow())
            await uow.commit()
        if resumed is not None:
            session, account = resumed
            request[STAFF] = Staff.of(account, desk_services(request).office.mailboxes)
            request[CSRF] = session.csrf_token
            request[SESSION_TOKEN] = token
    if request.match_info.route.name in PUBLIC:
        return await handler(request)
    if STAFF not in request:
        if request.method == "GET":
            raise web.HTTPSeeOther(f"/desk?next={request.rel_url.path_qs}")
        return render(request, "message.html", status=401, message_key="desk.signin.expired")
    if request.method == "POST":
        form = await request.post()
        given = form.get("csrf", "")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), request[CSRF].encode()
        ):
            return render(request, "message.html", status=403, message_key="desk.csrf")
    return await handler(request)


def see_other(location: str) -> web.Response:
    """A 303 that can carry cookies (an HTTPException may only be raised, not returned)."""
    return web.Response(status=303, headers={"Location": location})


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    """HttpOnly, SameSite=Lax, path /desk; Secure over HTTPS or when the public URL is https."""
    response.set_cookie(
        name,
        value,
        path="/desk",
        httponly=True,
        samesite="Lax",
        secure=request.secure or desk_services(request).https,
    )
