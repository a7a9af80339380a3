"""A WeCom app for the tests: callbacks sealed with wechatpy's enterprise crypto as WeCom seals
them, and a fake of the WeCom API that keeps WeCom's own rules — tokens expire, a card's task_id
is used once, and a member's 31st message in a minute is dropped *silently*, as WeCom does."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

CORP_ID = "ww0123456789abcdef"
AGENT_ID = 1000002
SECRET = "wecom-app-secret-0123456789"
TOKEN = "WeComToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PER_MINUTE = 30


def wecom_env(base: str) -> dict[str, Any]:
    """The app's settings, by short name (Settings.replace)."""
    return {
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": SECRET,
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "wecom_api_base": base,
    }


@dataclass
class Sent:
    touser: str
    msgtype: str
    body: dict[str, Any]
    delivered: bool  # False: WeCom dropped it silently (over the member's limit)

    @property
    def text(self) -> str:
        if self.msgtype == "text":
            return str(self.body["text"]["content"])
        card = self.body["template_card"]
        return f"{card['main_title']['title']} {card.get('sub_title_text', '')}"


@dataclass
class FakeWeComApi:
    base: str = ""
    members: set[str] = field(default_factory=set)  # userids the app may reach
    sent: list[Sent] = field(default_factory=list)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    current: str = ""
    expire_next: bool = False  # the next message/send finds the token expired (42001)
    token_fetches: int = 0
    _tasks: set[str] = field(default_factory=set)
    _per_minute: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))

    @property
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.send)
        app.router.add_route("*", "/cgi-bin/{anything:.*}", self.unknown)
        return app

    def delivered_to(self, userid: str) -> list[Sent]:
        return [s for s in self.sent if s.touser == userid and s.delivered]

    def texts_to(self, userid: str) -> list[str]:
        return [s.text for s in self.delivered_to(userid)]

    async def gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.token_fetches += 1
        self.current = f"WECOM_TOKEN_{next(self.tokens)}"
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": self.current, "expires_in": 7200}
        )

    async def send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self.current or self.expire_next:
            self.expire_next = False
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        body = await request.json()
        assert body["agentid"] == AGENT_ID
        userid = body["touser"]
        if userid not in self.members:
            return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": userid})
        if body["msgtype"] == "template_card":
            task = body["template_card"]["task_id"]
            assert re.fullmatch(r"[A-Za-z0-9_@-]{1,128}", task), task
            if task in self._tasks:
                return web.json_response({"errcode": 40058, "errmsg": "task_id exist"})
            self._tasks.add(task)
        elif body["msgtype"] == "text":
            assert len(body["text"]["content"].encode()) <= 2048
        minute = int(time.time() // 60)
        self._per_minute[(userid, minute)] += 1
        delivered = self._per_minute[(userid, minute)] <= PER_MINUTE
        self.sent.append(Sent(userid, body["msgtype"], body, delivered))
        # Over the limit WeCom answers ok and drops the message: nothing tells the sender.
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": secrets.token_hex(8)})

    async def unknown(self, request: web.Request) -> web.Response:
        return web.json_response({"errcode": 48001, "errmsg": "api forbidden"})


class WeComMember:
    """A staff member writing in the WeCom app: callbacks as WeCom seals and signs them."""

    def __init__(self, client: Any, userid: str) -> None:
        self.client = client
        self.userid = userid
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        self.ids = itertools.count(int(time.time() * 1000))

    def seal(self, inner: str, *, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        nonce = secrets.token_hex(5)
        stamp = str(timestamp or int(time.time()))
        outer = self.crypto.encrypt_message(inner, nonce, stamp)
        root = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", outer)
        assert root is not None
        encrypt = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", outer)
        assert encrypt is not None
        query = {"msg_signature": root.group(1), "timestamp": stamp, "nonce": nonce}
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypt.group(1)}]]></Encrypt></xml>"
        )
        return query, body

    def url_check(self, echo: str, *, timestamp: int | None = None) -> dict[str, str]:
        """WeCom's GET to the callback URL: an encrypted echostr, signed with the token."""
        sealed = self.crypto.encrypt_message(echo, "n1", "1")
        found = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", sealed)
        assert found is not None
        stamp, nonce = str(timestamp or int(time.time())), secrets.token_hex(4)
        signature = hashlib.sha1("".join(sorted((TOKEN, stamp, nonce, found.group(1)))).encode())
        return {
            "msg_signature": signature.hexdigest(),
            "timestamp": stamp,
            "nonce": nonce,
            "echostr": found.group(1),
        }

    def text_xml(self, text: str, msg_id: str = "") -> str:
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{self.userid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{escape(text)}]]></Content>"
            f"<MsgId>{msg_id or next(self.ids)}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
        )

    def button_xml(self, key: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{self.userid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[template_card_event]]></Event>"
            f"<EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[t{next(self.ids)}]]></TaskId>"
            f"<AgentID>{AGENT_ID}</AgentID></xml>"
        )

    async def post(self, inner: str, **seal: Any) -> int:
        query, body = self.seal(inner, **seal)
        response = await self.client.post("/wecom", params=query, data=body)
        return int(response.status)

    async def says(self, text: str, msg_id: str = "") -> int:
        return await self.post(self.text_xml(text, msg_id))

    async def presses(self, key: str) -> int:
        return await self.post(self.button_xml(key))
