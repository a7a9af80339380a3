"""Where staff hear that a person is needed: what an alert says, and the targets' protocol.

Targets are built by their plugins: the WeCom group robot (channels/wecom_robot.py), the
office's own signed webhook (channels/staff_webhook.py) and the Telegram duty group
(channels/telegram/staff.py, whose alerts carry buttons to take the case). Each sends a batch of
alerts the way its platform likes best.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import aiohttp

from .base import DeliveryFailed, Services

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)


@dataclass(frozen=True)
class StaffAlert:
    """Why a person is needed, with nothing personal beyond a masked phone.

    `text` is the whole alert as staff read it, composed from the office's catalog (channels
    hold no sentences of their own); the other fields are the same facts for machines.
    """

    key: str  # unique per alert; receivers deduplicate on it
    reason: str  # handoff, risk, unhappy, review, deadline.warning, deadline.missed, notification.failed
    title: str  # one line for humans, e.g. "群众要求人工服务"
    code: str = ""  # case code, when there is a case
    category: str = ""
    summary: str = ""  # short, phone masked
    channel: str = ""  # where the citizen wrote
    detail: str = ""  # e.g. the deadline and when it was due
    text: str = ""
    thread: int | None = None  # staff may talk to the citizen through this alert (Telegram)
    # The people it is for, as `front:user id` (e.g. `wecom:zhangsan`): a front end that reaches
    # people one by one sends it to its own among them; none = everyone on duty. Group front
    # ends (a duty group, a robot, a webhook) post it once, its text naming who it is for.
    addressees: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return self.text.split("\n") if self.text else [self.title]


class StaffTarget(Protocol):
    name: str

    async def start(self, services: Services) -> None: ...

    async def send(self, alerts: Sequence[StaffAlert]) -> dict[str, str]:
        """Post the alerts; by alert key, the target's id of the message (where it has one)."""
        ...


@dataclass(frozen=True)
class ThreadView:
    """A staff thread as a front end needs it to post in it: the alert it grew from (Telegram
    replies under it) and who has it (`claimed_user`, a front end's own user id)."""

    id: int
    alert_message_id: str = ""
    claimed_user: str = ""
    case_code: str = ""


@runtime_checkable
class ThreadTarget(StaffTarget, Protocol):
    """A front end where staff talk with the citizen of a thread: the citizen's words are posted
    there while a staff member has the conversation (the message's id, or "" when the front end
    is not the one the thread lives on)."""

    async def post_in_thread(self, thread: ThreadView, text: str) -> str: ...


ActionKind = Literal["claim", "show", "say", "done"]


@dataclass(frozen=True)
class StaffMember:
    """Who acted, as their front end knows them (`user_id` is unique across front ends)."""

    user_id: str
    name: str


@dataclass(frozen=True)
class StaffAction:
    """One thing a staff member did on a front end (the duty group, the WeCom app)."""

    kind: ActionKind
    member: StaffMember
    update_id: int | str  # the front end's id of the action, so a re-delivery is taken once
    thread: int | None = None  # from a button
    case_code: str = ""  # "认领 XF…" names the case instead
    reply_to: str = ""  # the group message the member replied to
    text: str = ""
    message_id: str = ""  # the member's own message, so answers can reply to it
    callback_id: str = ""
    front: str = "telegram"  # which front end: how to word the answers


# Answers the member where they acted: (text, the message it replies to or "") → its id.
Say = Callable[[str, str], Awaitable[str]]
# What staff do goes here, with a way to answer them.
StaffHandler = Callable[[StaffAction, Say], Awaitable[None]]


async def post_json(
    http: aiohttp.ClientSession, url: str, *, data: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    try:
        async with http.post(url, data=data, headers=headers, timeout=TIMEOUT) as response:
            text = await response.text()
            if response.status == 429:
                retry = response.headers.get("Retry-After")
                raise DeliveryFailed(
                    f"HTTP 429 from {url.split('?')[0]}", retry_after=float(retry) if retry else 60
                )
            if response.status >= 400:
                raise DeliveryFailed(
                    f"HTTP {response.status} from {url.split('?')[0]}: {text[:200]}"
                )
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                body = {}
            return body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__} calling {url.split('?')[0]}") from exc
