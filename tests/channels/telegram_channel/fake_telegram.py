"""A local Bot API: records every call, answers like Telegram, keeps its limits, fails on demand.

PTB calls `{base}/bot{token}/{method}`; tests point MINYI_TELEGRAM_API_BASE at this server and
assert on what was really sent. Nothing here touches the internet.

Telegram's rules hold on their own, not only when a test scripts a failure: a text over 4,096
characters (UTF-16 code units) or an empty one is refused with 400, and sending faster than the
flood limits allow gets 429 with `retry_after`. The limits are counted on `clock`, which tests
that run the sender on a virtual clock share with it.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAtest-token_for-minyi"
SECRET = "minyi-test_secret-42"
BOT_ID = 7000000001
PAYLOADS = Path(__file__).parents[1] / "payloads" / "telegram"
_UPDATE_IDS = itertools.count(500_000_000)
MAX_TEXT = 4096  # UTF-16 code units, as Telegram counts
# Messages allowed within a span of seconds: to one private chat (Telegram tolerates a short
# burst at about 1/s), to one group (20 a minute) and from the bot as a whole (30 a second).
FLOOD = {"private": (3, 1.0), "group": (20, 60.0), "bot": (30, 1.0)}
SENDING = frozenset({"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage"})


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None


@dataclass
class FakeBotApi:
    token: str = TOKEN
    base: str = ""
    calls: list[Call] = field(default_factory=list)
    # getUpdates answers these batches in order, then empty batches.
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    # Called when getUpdates has no batch left (a test stops its poller there).
    on_drained: Callable[[], None] | None = None
    webhook: dict[str, Any] = field(default_factory=dict)
    # getChatMember's answer per user id ("member" when not listed): "left", "kicked", …
    members: dict[int, str] = field(default_factory=dict)
    # Files citizens sent, by file_id (getFile, then /file/bot<token>/<file_path>).
    files: dict[str, bytes] = field(default_factory=dict)
    # Per method: [calls still to let through, status, answer] for each scripted failure.
    _failures: dict[str, list[list[Any]]] = field(default_factory=dict)
    _message_id: int = 1000
    clock: Callable[[], float] = time.monotonic
    _sent_at: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/photos/{file_id}", self._file)
        return app

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """After `after` more good calls, `times` calls of `method` fail with Telegram's `status`."""
        answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            answer["parameters"] = {"retry_after": retry_after}
        queue = self._failures.setdefault(method, [])
        queue.extend([[after if i == 0 else 0, status, answer] for i in range(times)])

    def too_many_requests(self, method: str = "sendMessage", retry_after: int = 3) -> None:
        self.fail(
            method, 429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
        )

    def blocked(self, method: str = "sendMessage") -> None:
        self.fail(method, 403, "Forbidden: bot was blocked by the user")

    # -- reading what was sent ---------------------------------------------------------------

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendMessage parameters Telegram accepted, optionally for one chat."""
        return [
            c.params
            for c in self.called("sendMessage")
            if c.status == 200 and (chat_id is None or int(c.params["chat_id"]) == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [p["text"] for p in self.sent(chat_id)]

    def keyboard(self, chat_id: int) -> tuple[int, list[tuple[str, str]]]:
        """The last message sent to the chat with an inline keyboard: its id, and the
        (button text, callback_data) pairs."""
        for call in reversed(self.called("sendMessage")):
            markup = call.params.get("reply_markup")
            if call.status == 200 and int(call.params["chat_id"]) == chat_id and markup:
                buttons = [
                    (b["text"], b["callback_data"])
                    for row in markup["inline_keyboard"]
                    for b in row
                ]
                return call.result["message_id"], buttons
        raise AssertionError(f"no keyboard was sent to {chat_id}")

    # -- the API -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params)
        self.calls.append(call)
        failures = self._failures.get(method)
        if failures and failures[0][0] > 0:
            failures[0][0] -= 1
        elif failures:
            _, call.status, answer = failures.pop(0)
            return _answer(call.status, answer)
        refusal = self._refusal(method, params)
        if refusal is not None:
            call.status = refusal["error_code"]
            return _answer(call.status, refusal)
        if method == "getUpdates":
            return await self._get_updates(call)
        call.result = self._result(method, params)
        return _answer(200, {"ok": True, "result": call.result})

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if request.match_info["token"] != self.token or found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found, content_type="application/octet-stream")

    def _refusal(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Telegram's own answer to a call that breaks its rules, or None."""
        if method == "getFile" and str(params.get("file_id")) not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        if method in ("sendMessage", "editMessageText"):
            units = len(str(params.get("text", "")).encode("utf-16-le")) // 2
            if units > MAX_TEXT:
                return _error(400, "Bad Request: message is too long")
            if not str(params.get("text", "")).strip():
                return _error(400, "Bad Request: message text is empty")
        if method not in SENDING:
            return None
        chat = str(params.get("chat_id", ""))
        now = self.clock()
        kind = "group" if chat.startswith("-") else "private"
        for key, (limit, span) in ((chat, FLOOD[kind]), ("bot", FLOOD["bot"])):
            sent = self._sent_at[key]
            # A hundredth of slack: a sender keeping exactly to the limit must not be refused.
            while sent and sent[0] <= now - span * 0.99:
                sent.popleft()
            if len(sent) >= limit:
                wait = max(1, math.ceil(sent[0] + span - now))
                answer = _error(429, f"Too Many Requests: retry after {wait}")
                return answer | {"parameters": {"retry_after": wait}}
        self._sent_at[chat].append(now)
        self._sent_at["bot"].append(now)
        return None

    async def _get_updates(self, call: Call) -> web.Response:
        if self.webhook.get("url"):
            call.status = 409
            return _answer(
                409,
                {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is "
                    "active; use deleteWebhook to delete the webhook first",
                },
            )
        if self.batches:
            return _answer(200, {"ok": True, "result": self.batches.pop(0)})
        if self.on_drained is not None:
            self.on_drained()
        # A long poll with nothing new: hold briefly (not the full timeout, to end tests fast).
        await asyncio.sleep(min(float(call.params.get("timeout") or 0), 0.05))
        return _answer(200, {"ok": True, "result": []})

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "民意",
                "username": "minyi_test_bot",
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in ("sendMessage", "sendDocument", "editMessageReplyMarkup", "editMessageText"):
            if method.startswith("send"):
                self._message_id += 1
            chat_id = int(params["chat_id"])
            message: dict[str, Any] = {
                "message_id": self._message_id
                if method.startswith("send")
                else int(params["message_id"]),
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "民意"},
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "date": int(time.time()),
                "text": params.get("text", ""),
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return message
        if method == "getFile":
            file_id = str(params["file_id"])
            return {
                "file_id": file_id,
                "file_unique_id": "u" + file_id[-12:],
                "file_size": len(self.files[file_id]),
                "file_path": f"photos/{file_id}",
            }
        if method == "getChatMember":
            user_id = int(params["user_id"])
            return {
                "status": self.members.get(user_id, "member"),
                "user": {"id": user_id, "is_bot": False, "first_name": "x"},
            }
        if method == "setWebhook":
            self.webhook = {
                "url": params["url"],
                "secret_token": params.get("secret_token"),
                "allowed_updates": params.get("allowed_updates", []),
            }
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": 0,
                "max_connections": 40,
                "allowed_updates": self.webhook.get("allowed_updates", []),
            }
        return True  # answerCallbackQuery and the rest


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):  # an uploaded file
            params[key] = {"filename": value.filename, "content": value.file.read()}
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _error(status: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": status, "description": description}


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


# -- real-shaped updates ---------------------------------------------------------------------------


@dataclass
class TelegramUser:
    """A person in a private chat with the bot, producing updates the way Telegram shapes them."""

    chat_id: int = 1111111111
    language: str = "zh-hans"

    def update(self, payload: str, **fields: Any) -> dict[str, Any]:
        data = copy.deepcopy(json.loads((PAYLOADS / f"{payload}.json").read_text("utf-8")))
        update_id = data["update_id"] = next(_UPDATE_IDS)  # Telegram numbers them per bot
        body = data.get("message") or data.get("edited_message") or data.get("callback_query")
        assert body is not None
        if "data" in body:
            body["id"] = f"cb-{update_id}"  # every press has its own query id
        sender = body["from"]
        sender["id"] = self.chat_id
        sender["language_code"] = self.language
        chat = (body.get("message") or body)["chat"]
        if chat["type"] == "private":
            chat["id"] = self.chat_id
        for key, value in fields.items():
            if key == "data":
                body["data"] = value
            elif key == "pressed":
                body["message"]["message_id"] = value
            else:
                body[key] = value
        return data

    def text(self, text: str) -> dict[str, Any]:
        return self.update("text", text=text)

    def press(self, key: str, on_message: int) -> dict[str, Any]:
        return self.update("callback_query", data=key, pressed=on_message)
