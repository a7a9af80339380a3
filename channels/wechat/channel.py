"""The WeChat official-account channel: callback, customer-service and template messages, menu."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from conversation.messages import Reply

from ..access_token import AccessTokens
from ..base import (
    DeliveryFailed,
    Handler,
    Notice,
    Recipient,
    RecipientUnreachable,
    Route,
    Services,
)
from .api import WeChatApi
from .callback import Callback
from .config import WeChatConfig
from .envelope import Envelope
from .render import as_text, split
from .template import client_msg_id, template_data
from .token import StableTokens

log = logging.getLogger(__name__)


class WeChatChannel:
    name = "wechat"
    title = "微信"

    def __init__(self, config: WeChatConfig, handle: Handler) -> None:
        self.config = config
        self.envelope = Envelope(config.token, config.app_id, config.aes_key)
        self.callback = Callback(
            self.envelope,
            handle,
            budget=config.reply_budget,
            apology=config.apology,
            push=self._push,
            # Shedding answers now and pushes later: only when pushing is possible at all.
            shed_budget=config.shed_budget if config.app_secret else None,
            max_turns=config.max_turns if config.app_secret else 0,
        )
        self._api: WeChatApi | None = None

    def routes(self) -> Sequence[web.RouteDef]:
        return self.callback.routes()

    async def start(self, services: Services) -> None:
        await self.callback.start(services)
        fetch = StableTokens(
            services.http,
            api_base=self.config.api_base,
            app_id=self.config.app_id,
            app_secret=self.config.app_secret,
            timeout=self.config.api_timeout,
        )
        tokens = AccessTokens(
            services.shared, f"wechat:access_token:{self.config.app_id}", fetch, name="wechat"
        )
        self._api = WeChatApi(
            services.http, tokens, api_base=self.config.api_base, timeout=self.config.api_timeout
        )
        if not self.config.app_secret:
            log.warning(
                "MINYI_WECHAT_APP_SECRET is not set: replies slower than %.1f s, long replies "
                "and notifications cannot reach WeChat citizens",
                self.config.reply_budget,
            )

    @property
    def api(self) -> WeChatApi:
        if self._api is None:
            raise DeliveryFailed("the WeChat channel is not started")
        return self._api

    def reach(self, recipient: Recipient) -> Sequence[Route]:
        """A citizen who wrote to the account: customer-service messages (within 48 hours of
        their last message), then a template message (any time, but no conversation)."""
        if recipient.channel != self.name or not recipient.chat_reachable:
            return []
        openid = recipient.address

        async def chat(notice: Notice) -> str | None:
            return await self.send(openid, notice.replies)

        async def template(notice: Notice) -> str | None:
            if not notice.fields:
                raise RecipientUnreachable("this notice has no template form")
            return await self.send_template(openid, dict(notice.fields), f"{notice.key}:tpl")

        return [
            Route("wechat", self.name, conversational=True, deliver=chat),
            Route("wechat_template", self.name, conversational=False, deliver=template),
        ]

    async def send(self, recipient: str, replies: Sequence[Reply]) -> str | None:
        """Customer-service text messages, as few as the length allows (WeChat counts them:
        5 within 48 hours of the citizen's last message). WeChat gives them no message id."""
        for piece in split(as_text(replies)):
            await self.api.send_text(recipient, piece)
        return None

    async def send_template(self, openid: str, fields: dict[str, str], idempotency_key: str) -> str:
        """A status notification; returns WeChat's msgid (reported back in
        TEMPLATESENDJOBFINISH). Our fields are mapped by MINYI_WECHAT_TEMPLATE_FIELDS."""
        if not self.config.template_id:
            # Unreachable, not a passing failure: retrying cannot help, the notifier moves on.
            raise RecipientUnreachable("no template configured")
        return await self.api.send_template(
            openid,
            self.config.template_id,
            template_data(fields, self.config.template_fields),
            client_msg_id(idempotency_key),
        )

    async def fetch_media(self, ref: str, limit: int) -> bytes:
        """A photo the citizen sent, while its MediaId lasts (3 days)."""
        return await self.api.download(ref, limit)

    async def push_menu(self, menu: Mapping[str, Any]) -> dict[str, Any]:
        """`menu/create`; WeChat's answer as it came ({"errcode": 0, "errmsg": "ok"})."""
        return await self.api.call("menu/create", dict(menu))

    async def _push(self, openid: str, pieces: Sequence[str]) -> None:
        """Replies that missed the passive reply; a failure is logged (no one else to tell)."""
        for piece in pieces:
            try:
                await self.api.send_text(openid, piece)
            except DeliveryFailed as exc:
                log.warning("wechat: a reply to %s was not delivered: %s", openid, exc.reason)
                return

    async def close(self) -> None:
        await self.callback.close()
