"""The main menu of CONTRACTS.md: numbers and words both pick an entry."""

from __future__ import annotations

from ..messages import Choice, Reply
from ..validators import normalize
from .base import Context

# (key the citizen sends, action, catalog key of the label, other words that mean the same)
ENTRIES: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    (
        "1",
        "file",
        "menu.file",
        frozenset({"反映", "我要反映", "投诉", "举报", "反映问题", "report"}),
    ),
    (
        "2",
        "status",
        "menu.status",
        frozenset({"查询", "进度", "进度查询", "查进度", "status", "progress"}),
    ),
    ("3", "rate", "menu.rate", frozenset({"评价", "rate", "rating"})),
    (
        "4",
        "suggest",
        "menu.suggest",
        frozenset({"建议", "意见", "意见建议", "suggestion", "suggest"}),
    ),
    ("5", "faq", "menu.faq", frozenset({"常见问题", "问题", "faq", "questions"})),
    ("0", "staff", "menu.staff", frozenset({"人工", "人工服务", "staff"})),
)
ACTIONS = frozenset(action for _, action, _, _ in ENTRIES)


def menu_choices(ctx: Context) -> tuple[Choice, ...]:
    return tuple(Choice(key, ctx.t(label)) for key, _, label, _ in ENTRIES)


def menu_reply(ctx: Context, greeting: bool = False, lead: str = "") -> Reply:
    """The menu as one message, after an optional first line (why we are back at the menu)."""
    text = ctx.t("greeting", office=ctx.office.name(ctx.lang)) if greeting else ctx.t("menu")
    draft = ctx.state.draft
    if draft:
        key = "1" if draft.get("flow") == "filing" else "4"
        text = ctx.t("menu.draft", key=key) + "\n" + text
    if lead:
        text = lead + "\n" + text
    return Reply(text, menu_choices(ctx))


def menu_action(ctx: Context) -> str | None:
    """The menu entry the message picks, or None."""
    word = normalize(ctx.inbound.text)
    word = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "零": "0"}.get(word, word)
    for key, action, label, synonyms in ENTRIES:
        if word == key or word in synonyms or word == normalize(ctx.t(label)):
            return action
    return None
