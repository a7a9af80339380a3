"""Replies as WeChat text: numbered choices, one message per turn, split where WeChat needs it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from conversation.messages import Reply

# WeChat refuses longer text contents (measured; the docs give no figure). Bytes of UTF-8.
MAX_BYTES = 2048
# Where a long line may be broken when it has no newline: after a sentence, else a clause,
# else a space — in the second half of the piece, so that no piece is needlessly short.
_BREAKS = (("。", "！", "？", "!", "?", "；", ";"), ("，", ",", "、", "：", ":"), (" ",))
# XML 1.0 cannot carry these at all; a reply containing one would be refused as a whole.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def as_text(replies: Sequence[Reply]) -> str:
    """Several replies of one turn as one message, choices as numbered lines."""
    return "\n\n".join(text for text in (r.as_plain_text().strip() for r in replies) if text)


def split(text: str, limit: int = MAX_BYTES) -> list[str]:
    """Pieces of at most `limit` UTF-8 bytes, broken between lines where possible, then after
    a sentence or clause, and otherwise between characters — never inside one."""
    text = _NOT_XML.sub("", text).strip()
    if len(text.encode()) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current.strip():
            pieces.append(current.strip())
        current = ""
        while len(line.encode()) > limit:
            head = _longest_prefix(line, limit)
            cut = _break(head)
            pieces.append(line[:cut].strip())
            line = line[cut:]
        current = line
    if current.strip():
        pieces.append(current.strip())
    return [p for p in pieces if p]


def _break(head: str) -> int:
    for marks in _BREAKS:
        cut = max(head.rfind(mark) + 1 for mark in marks)
        if cut > len(head) // 2:
            return cut
    return len(head)  # no sensible break nearby: between two characters


def _longest_prefix(line: str, limit: int) -> str:
    """The longest prefix of `line` within `limit` bytes; found by bytes, cut at a character."""
    return line.encode()[:limit].decode("utf-8", errors="ignore")


# wechatpy's text reply as it renders it (`create_reply(text, message, render=True)`), filled in
# directly: wechatpy builds a reply object and renders it field by field, ~20 µs of every turn.
_TEXT_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
    "<FromUserName><![CDATA[{source}]]></FromUserName>\n"
    "<ToUserName><![CDATA[{target}]]></ToUserName>\n<CreateTime>{time}</CreateTime>\n</xml>"
)


def passive_reply(text: str, message: Any, clock: Callable[[], float] = time.time) -> str:
    """The passive text reply to `message` (a wechatpy message): from the account it was sent
    to, to the citizen who sent it."""
    return _TEXT_REPLY.format(
        content=_cdata(text),
        source=_cdata(message.target),
        target=_cdata(message.source),
        time=int(clock()),
    )


def _cdata(text: str) -> str:
    # A "]]>" typed by the citizen and quoted back (in the summary before submitting, say) would
    # end the CDATA section early and break the reply.
    return text.replace("]]>", "]]]]><![CDATA[>")
