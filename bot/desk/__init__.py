"""The staff web desk at /desk: sign-in, cases and their lifecycle steps, statistics."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bot.desk import actions, cases, inbox, live, photos, signin, stats_page
from bot.desk.guard import security_headers, signed_in
from bot.desk.services import DESK, DeskServices

STATIC = Path(__file__).parent / "static"


def create_desk(services: DeskServices) -> web.Application:
    """Mounted by the app at /desk; handlers reach what it needs through `desk_services`."""
    desk = web.Application(middlewares=[security_headers, signed_in])
    desk[DESK] = services
    router = desk.router
    router.add_get("", signin.signin_page, name="desk.signin")
    router.add_post("/signin", signin.signin, name="desk.signin_post")
    router.add_post("/signout", signin.signout)
    router.add_get("/cases", cases.case_list)
    router.add_get("/cases/{code}", cases.case_page)
    router.add_get("/cases/{code}/photos/{attachment}", photos.photo)
    router.add_post("/cases/{code}/act", actions.act)
    router.add_post("/cases/{code}/link", actions.link)
    router.add_post("/cases/{code}/escalate", actions.escalate_case)
    router.add_get("/inbox", inbox.inbox)
    router.add_get("/threads/{thread}", inbox.thread_page)
    router.add_post("/threads/{thread}", inbox.act)
    router.add_get("/live", live.live)
    desk[live.STREAMS] = set()
    desk[live.VISIBILITY] = live.Visibility()
    desk.on_shutdown.append(live.close_streams)
    router.add_get("/stats", stats_page.stats_page)
    router.add_get("/stats.csv", stats_page.stats_csv)
    router.add_static("/static", STATIC, name="desk.static")
    return desk
