"""What a staff member does in the WeCom app, as a `StaffAction`.

`认领 XF…` claims the case's conversation, `查看 XF…` shows the case, `结束` hands the citizen
back to the bot, a button on an alert card (认领 / 查看) acts on that alert's thread, and any
other text is said to the citizen of the member's claimed conversation.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from ..staff import ActionKind, StaffAction, StaffMember

_CODE = r"(XF\d{8}-[0-9A-HJKMNP-TV-Z]{6})"
_CLAIM = re.compile(rf"(?:认领|claim)\s*{_CODE}", re.IGNORECASE)
_SHOW = re.compile(rf"(?:查看|show)\s*{_CODE}", re.IGNORECASE)
_DONE = re.compile(r"(?:结束|结束对话|/done|done)", re.IGNORECASE)
_BUTTON = re.compile(r"(claim|show):(\d{1,18})")
WORDS_LIMIT = 2000


def text_of(root: Element, tag: str) -> str:
    child = root.find(tag)
    return (child.text or "").strip() if child is not None and child.text else ""


def dedupe_key(root: Element) -> str:
    """The same for every delivery of one message or event (WeCom retries three times)."""
    message_id = text_of(root, "MsgId")
    if message_id:
        return message_id
    parts = ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId")
    return ":".join(text_of(root, tag) for tag in parts)


def read_action(root: Element) -> StaffAction | None:
    """The member's action, or None for what is not one (entering the app, a location)."""
    userid = text_of(root, "FromUserName")
    if not userid:
        return None
    member = StaffMember(f"wecom:{userid}", userid)
    key = dedupe_key(root)
    kind = text_of(root, "MsgType")
    if kind == "event":
        if text_of(root, "Event") != "template_card_event":
            return None
        button = _BUTTON.fullmatch(text_of(root, "EventKey"))
        if button is None:
            return None
        chosen: ActionKind = "claim" if button.group(1) == "claim" else "show"
        return StaffAction(chosen, member, key, thread=int(button.group(2)), front="wecom")
    if kind != "text":
        return StaffAction("say", member, key, text="", front="wecom")  # only words are taken
    words = text_of(root, "Content")[:WORDS_LIMIT]
    for pattern, action in ((_CLAIM, "claim"), (_SHOW, "show")):
        found = pattern.fullmatch(words)
        if found:
            return StaffAction(action, member, key, case_code=found.group(1).upper(), front="wecom")  # type: ignore[arg-type]
    if _DONE.fullmatch(words):
        return StaffAction("done", member, key, front="wecom")
    return StaffAction("say", member, key, text=words, front="wecom")
