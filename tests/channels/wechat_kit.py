"""WeChat for the tests: pushes signed and encrypted as WeChat sends them (wechatpy's crypto), a
citizen who sends them, and a fake of the WeChat API that records every call it receives."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aiohttp import web
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

TOKEN = "minyiTestToken2026"  # 16-32 letters and digits, as WeChat wants
APP_ID = "wx5c1e4a9b2d3f7e80"
APP_SECRET = "test-app-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as the console gives
OPENID = "oK8Yq6Dp2fXvN3sLw0hTzR1aBcDe"
ACCOUNT = "gh_7c1e4a9b2d3f"
PAYLOADS = Path(__file__).parent / "payloads" / "wechat"
_msg_ids = itertools.count(24781234567900000)


def payload(name: str, **fields: str | int | float) -> str:
    """A recorded push with some fields replaced (strings as CDATA, numbers bare)."""
    xml = (PAYLOADS / f"{name}.xml").read_text("utf-8")
    for tag, value in fields.items():
        if isinstance(value, str):
            text = "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        else:
            text = str(value)
        xml, found = re.subn(
            rf"<{tag}>.*?</{tag}>", lambda _, t=text, g=tag: f"<{g}>{t}</{g}>", xml, flags=re.S
        )
        if not found:
            xml = xml.replace("</xml>", f"  <{tag}>{text}</{tag}>\n</xml>")
    return xml


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted parts, concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass
class WeChatServer:
    """What WeChat's servers send: `mode` is plain, compatible or safe (the console's choice).

    With `api`, every push also opens the citizen's customer-service window at that fake API,
    as WeChat does when a citizen writes."""

    mode: str = "safe"
    token: str = TOKEN
    app_id: str = APP_ID
    aes_key: str = AES_KEY
    api: FakeWeChatApi | None = None

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    def push(
        self, xml: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query string and body of one push of `xml`."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        if self.api is not None:
            self.api.heard(xml)
        query = {"signature": signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if self.mode == "plain":
            return query, xml.encode()
        sealed = ElementTree.fromstring(self.crypto.encrypt_message(xml, nonce, ts))
        encrypt, msg_signature = sealed.findtext("Encrypt", ""), sealed.findtext("MsgSignature", "")
        query |= {"encrypt_type": "aes", "msg_signature": msg_signature}
        if self.mode == "safe":
            body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        else:  # compatible: the plaintext fields and the ciphertext, side by side
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        return query, body.encode()

    def open_reply(self, body: str) -> str:
        """The passive reply as WeChat reads it: decrypted and its signature checked."""
        if not body.startswith("<xml>") or "<Encrypt>" not in body:
            return body
        envelope = ElementTree.fromstring(body)
        return str(
            self.crypto.decrypt_message(
                body,
                envelope.findtext("MsgSignature", ""),
                envelope.findtext("TimeStamp", ""),
                envelope.findtext("Nonce", ""),
            )
        )


@dataclass
class Delivery:
    status: int
    body: str
    reply: str  # the reply XML, decrypted; "" or "success" when nothing is said

    @property
    def text(self) -> str:
        """What the citizen reads ("" when nothing)."""
        if not self.reply.startswith("<xml>"):
            return ""
        return ElementTree.fromstring(self.reply).findtext("Content", "")


@dataclass
class WeChatCitizen:
    """Someone writing to the official account; every message goes through the real callback."""

    client: TestClient
    server: WeChatServer = field(default_factory=WeChatServer)
    openid: str = OPENID

    async def deliver(self, xml: str, **push: Any) -> Delivery:
        query, body = self.server.push(xml, **push)
        response = await self.client.post("/wechat", params=query, data=body)
        text = await response.text()
        reply = self.server.open_reply(text) if response.status == 200 else ""
        return Delivery(response.status, text, reply)

    def message(self, name: str, **fields: Any) -> str:
        fields.setdefault("FromUserName", self.openid)
        if not name.startswith("event"):
            fields.setdefault("MsgId", next(_msg_ids))
        fields.setdefault("CreateTime", int(time.time()))
        return payload(name, **fields)

    async def send(self, name: str, **fields: Any) -> Delivery:
        return await self.deliver(self.message(name, **fields))

    async def say(self, text: str) -> str:
        delivery = await self.send("text", Content=text)
        assert delivery.status == 200, delivery.body
        return delivery.text


# -- the WeChat API -------------------------------------------------------------------------------


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: bytes
    errcode: int = 0  # what the fake answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


# Customer-service messages WeChat lets an account send after what the citizen did, and for how
# long (reference/protocols.md §1.6): a message opens 5 for 48 hours; a menu click, a scan or
# following the account 3 for a minute; anything else (VIEW, LOCATION reports) none.
WINDOWS = {"message": (5, 48 * 3600.0), "event": (3, 60.0)}
OPENING_EVENTS = frozenset({"subscribe", "scan", "click", "scancode_push", "scancode_waitmsg"})
KNOWN_PATHS = frozenset({"message/custom/send", "message/template/send", "menu/create"})


@dataclass
class Window:
    until: float
    left: int


class FakeWeChatApi:
    """`cgi-bin/stable_token`, `message/custom/send`, `message/template/send`, `menu/create`.

    Tokens behave as WeChat's: normal mode returns the current token; `expire()` makes WeChat
    refuse it (42001) and hand out a new one; `revoke()` makes it refuse the token (40001)
    while normal mode still returns it, so only a forced refresh gets a new one.

    The rules hold on their own, as WeChat's do: a customer-service message outside the
    citizen's window is refused with 45015, one over the window's quota with 45047 (a citizen
    opens a window by writing: `WeChatServer(api=fake)` or `heard()`); any other `cgi-bin` path
    gets WeChat's "invalid url". `elapse()` moves the fake's clock for the windows.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.base = ""
        self.tokens = itertools.count(1)
        self.current: str | None = None
        self.refused: dict[str, int] = {}
        self.answers: dict[str, list[dict[str, Any]]] = {}  # queued answers by path
        self.token_gate: asyncio.Event | None = None
        self.msg_ids = itertools.count(3147483000)
        self.sent_templates: dict[tuple[str, str], int] = {}
        self.windows: dict[str, Window] = {}
        self.offset = 0.0  # seconds added to the real clock by elapse()
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.media: dict[str, bytes] = {}  # temporary media citizens sent, by MediaId
        self.media_down = False  # media/get answers 502 (WeChat's gateway having a bad minute)
        self.app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        self.app.router.add_get("/cgi-bin/media/get", self._media_get)
        self.app.router.add_post("/cgi-bin/{path:.+}", self._api)

    def of(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def texts_to(self, openid: str, delivered: bool = False) -> list[str]:
        """Customer-service texts sent to `openid` (only those WeChat took, if `delivered`)."""
        return [
            c.json["text"]["content"]
            for c in self.of("message/custom/send")
            if c.json["touser"] == openid and not (delivered and c.errcode)
        ]

    def expire(self) -> None:
        if self.current:
            self.refused[self.current] = 42001
            self.current = None

    def revoke(self) -> None:
        if self.current:
            self.refused[self.current] = 40001

    def now(self) -> float:
        return time.time() + self.offset

    def elapse(self, seconds: float) -> None:
        self.offset += seconds

    def heard(self, xml_or_openid: str, kind: str = "message") -> None:
        """The citizen wrote (a push's XML, or an openid and `message` or `event`)."""
        openid, opens = xml_or_openid, kind
        if xml_or_openid.lstrip().startswith("<"):
            try:
                root = ElementTree.fromstring(xml_or_openid)
            except ElementTree.ParseError:
                return  # WeChat never delivered it
            openid = root.findtext("FromUserName", "")
            if root.findtext("MsgType", "") != "event":
                opens = "message"
            elif root.findtext("Event", "").lower() in OPENING_EVENTS:
                opens = "event"
            else:
                return
        quota, seconds = WINDOWS[opens]
        current = self.windows.get(openid)
        if opens == "event" and current and current.until > self.now() + seconds:
            return  # a click does not shorten the 48 hours a message opened
        self.windows[openid] = Window(self.now() + seconds, quota)

    def answer_next(self, path: str, answer: dict[str, Any]) -> None:
        self.answers.setdefault(path, []).append(answer)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Until the recorded calls satisfy `condition` (a wait, not a timing assertion; the
        limit only keeps a broken test from hanging)."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(condition)

    async def _record(self, path: str, request: web.Request) -> Call:
        call = Call(path, dict(request.query), await request.read())
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return call

    async def _stable_token(self, request: web.Request) -> web.Response:
        call = await self._record("stable_token", request)
        if self.token_gate is not None:
            await self.token_gate.wait()
        data = call.json
        if data.get("appid") != APP_ID or data.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        if data.get("force_refresh") or self.current is None:
            self.current = f"ACCESS_TOKEN_{next(self.tokens)}"
        return web.json_response({"access_token": self.current, "expires_in": 7200})

    async def _api(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        call = await self._record(path, request)
        answer = self._answer(path, call, request.query.get("access_token", ""))
        call.errcode = int(answer.get("errcode", 0))
        return web.json_response(answer)

    async def _media_get(self, request: web.Request) -> web.Response:
        """A medium as WeChat serves it: the file, or its JSON error as text/plain."""
        call = await self._record("media/get", request)
        if self.media_down:
            return web.Response(status=502, text="Bad Gateway")
        token = request.query.get("access_token", "")
        if token in self.refused or token != self.current:
            error: dict[str, Any] = {"errcode": self.refused.get(token, 40001), "errmsg": "invalid"}
        elif (found := self.media.get(request.query.get("media_id", ""))) is not None:
            return web.Response(body=found, content_type="image/jpeg")
        else:
            error = {"errcode": 40007, "errmsg": "invalid media_id"}
        call.errcode = error["errcode"]
        return web.Response(text=json.dumps(error), content_type="text/plain")

    def _answer(self, path: str, call: Call, token: str) -> dict[str, Any]:
        if token in self.refused or token != self.current:
            return {"errcode": self.refused.get(token, 40001), "errmsg": "invalid credential"}
        queued = self.answers.get(path)
        if queued:
            return queued.pop(0)
        if path not in KNOWN_PATHS:
            return {"errcode": 40066, "errmsg": "invalid url"}
        if path == "message/custom/send":
            return self._within_window(call.json.get("touser", ""))
        if path == "message/template/send":
            key = (call.json["touser"], call.json.get("client_msg_id", ""))
            msg_id = self.sent_templates.setdefault(key, next(self.msg_ids))
            return {"errcode": 0, "errmsg": "ok", "msgid": msg_id}
        return {"errcode": 0, "errmsg": "ok"}

    def _within_window(self, openid: str) -> dict[str, Any]:
        window = self.windows.get(openid)
        if window is None or window.until < self.now():
            return {
                "errcode": 45015,
                "errmsg": "response out of time limit or subscription is canceled",
            }
        if window.left <= 0:
            return {"errcode": 45047, "errmsg": "out of response count limit"}
        window.left -= 1
        return {"errcode": 0, "errmsg": "ok"}
