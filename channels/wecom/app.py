"""The WeCom app, Minyi's staff front end in mainland China: `GET/POST /wecom`, alert cards with
认领 / 查看 buttons to the staff on duty, and a citizen's words to whoever has their conversation.

A callback is authenticated and decrypted before anything is read, taken once (WeCom retries
three times when it hears nothing in 5 s), and answered within WeCom's budget: what the member
did is handed to the staff service, and its answer goes back as an app message, not as a
passive reply (which would need sealing and could not outlast the budget).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from ..base import DeliveryFailed, Recipient, Route, Services, read_body
from ..staff import StaffAlert, StaffHandler, ThreadView
from ..wechat.envelope import Malformed, Refused
from .api import WeComApi
from .commands import dedupe_key, read_action, text_of
from .envelope import Envelope
from .settings import WeComConfig

log = logging.getLogger(__name__)

PATH = "/wecom"
MAX_BODY = 64 * 1024
# Answer WeCom before its 5 s run out; the action goes on in the background after that.
BUDGET = 4.0
# A message id is remembered while WeCom may still re-deliver it.
SEEN_TTL = 2 * 3600.0
PREFIX = "wecom:"  # this front end's addressees (StaffAlert.addressees)
TEXT_BYTES = 2048
# Who gets alerts on this front end (their WeCom userids): the staff on duty.
Roster = Callable[[], Awaitable[list[str]]]


class WeComApp:
    name = "wecom"
    title = "企业微信"

    def __init__(self, config: WeComConfig, on_staff: StaffHandler, roster: Roster) -> None:
        self.config = config
        self.envelope = Envelope(config.token, config.aes_key, config.corp_id)
        self.on_staff = on_staff
        self.roster = roster
        self._services: Services | None = None
        self._api: WeComApi | None = None
        self.tasks: set[asyncio.Future[Any]] = set()

    # -- the channel's side ---------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get(PATH, self.verify_url), web.post(PATH, self.receive)]

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        return []  # staff only: no citizen is reached here

    async def start(self, services: Services) -> None:
        self._services = services
        self._api = WeComApi(
            services.http,
            services.shared,
            api_base=self.config.api_base,
            corp_id=self.config.corp_id,
            secret=self.config.secret,
            agent_id=self.config.agent_id,
        )

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)

    @property
    def api(self) -> WeComApi:
        if self._api is None:
            raise DeliveryFailed("the WeCom app is not started")
        return self._api

    # -- callbacks --------------------------------------------------------------------------------

    async def verify_url(self, request: web.Request) -> web.Response:
        """WeCom's check of the callback URL: the decrypted echostr, as plain text."""
        try:
            echo = self.envelope.echo(request.query)
        except Refused as exc:
            return self._refuse(exc.reason)
        return web.Response(text=echo, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, MAX_BODY)
            root = self.envelope.open(request.query, body)
        except Refused as exc:
            return self._refuse(exc.reason)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=f"larger than {MAX_BODY} bytes")
        except Malformed as exc:
            log.warning("wecom callback unreadable: %s", exc)
            return web.Response(status=400, text=str(exc))
        if text_of(root, "AgentID") not in ("", str(self.config.agent_id)):
            return self._refuse("agent_id")
        action = read_action(root)
        if action is None:
            return web.Response(text="")
        assert self._services is not None
        if not await self._services.shared.add(f"wecom:seen:{dedupe_key(root)}", "1", SEEN_TTL):
            return web.Response(text="")  # a re-delivery: taken already
        userid = text_of(root, "FromUserName")

        async def say(text: str, reply_to: str = "") -> str:
            return await self.send_text(userid, text)

        work = asyncio.ensure_future(self.on_staff(action, say))
        self.tasks.add(work)
        work.add_done_callback(self._finished)
        await asyncio.wait([work], timeout=BUDGET)
        return web.Response(text="")

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("wecom: a staff action failed", exc_info=task.exception())

    def _refuse(self, reason: str) -> web.Response:
        log.warning("refused a WeCom callback: %s", reason)
        if self._services is not None:
            self._services.rejected("wecom", reason)
        return web.Response(status=403, text="forbidden")

    # -- out: to staff ----------------------------------------------------------------------------

    async def send_text(self, userid: str, text: str) -> str:
        return await self.api.send(userid, {"msgtype": "text", "text": {"content": _fit(text)}})

    async def send(self, alerts: Sequence[StaffAlert]) -> dict[str, str]:
        """Each alert to each member on duty: a card with 认领 / 查看 when staff can take the
        conversation, plain text otherwise."""
        members = await self.roster()
        if not members:
            raise DeliveryFailed(
                "wecom: no staff on duty have a WeCom userid (minyi staff add --wecom)"
            )
        for alert in alerts:
            mine = [a.removeprefix(PREFIX) for a in alert.addressees if a.startswith(PREFIX)]
            # An alert for named people goes to them (on duty or not: 督办 finds its people);
            # one for nobody in particular, or for nobody reachable here, to everyone on duty.
            for userid in mine or members:
                await self.api.send(userid, _message(alert, userid))
        return {}

    async def post_in_thread(self, thread: ThreadView, text: str) -> str:
        """A citizen's words to the member who has their conversation, when that is on WeCom."""
        if not thread.claimed_user.startswith("wecom:"):
            return ""
        return await self.send_text(thread.claimed_user.removeprefix("wecom:"), text)


def _message(alert: StaffAlert, userid: str) -> dict[str, Any]:
    if alert.thread is None:
        return {"msgtype": "text", "text": {"content": _fit(alert.text or alert.title)}}
    # The same card to the same member is one task: a retry is refused by WeCom, not doubled.
    task = hashlib.sha256(f"{alert.key}:{userid}".encode()).hexdigest()[:40]
    lines = alert.lines()[1:]
    return {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "button_interaction",
            "main_title": {"title": alert.title[:26], "desc": alert.code},
            "sub_title_text": "\n".join(lines)[:300],
            "task_id": f"minyi-{task}",
            "button_list": [
                {"text": "认领", "style": 1, "key": f"claim:{alert.thread}"},
                {"text": "查看", "style": 2, "key": f"show:{alert.thread}"},
            ],
        },
    }


def _fit(text: str) -> str:
    """WeCom takes at most 2048 bytes of text; cut at a character, never inside one."""
    data = text.encode()
    if len(data) <= TEXT_BYTES:
        return text
    return data[: TEXT_BYTES - 3].decode(errors="ignore") + "…"
