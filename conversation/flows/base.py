"""What every flow step receives (Context) and returns (Outcome), and the words it listens for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from ..catalog import Texts
from ..commands import Command, Results
from ..messages import Choice, Inbound, Reply
from ..office import OfficeConfig
from ..ports import DeadlinePolicy, Lookups
from ..state import ConversationState
from ..validators import choice_number, normalize

CANCEL = frozenset({"取消", "退出", "不办了", "cancel", "/cancel", "quit"})
BACK = frozenset({"返回", "上一步", "back"})
MENU = frozenset({"菜单", "主菜单", "帮助", "menu", "/menu", "help", "/help", "/start", "start"})
STAFF = frozenset({"人工", "人工服务", "转人工", "客服", "staff", "human", "/staff"})
SKIP = frozenset({"跳过", "不填", "没有", "无", "skip", "no", "none"})
DONE = frozenset({"完成", "好了", "发完了", "没有了", "done", "finish", "ok"})
YES = frozenset({"是", "对", "好", "确认", "提交", "yes", "y", "submit"})


@dataclass
class Context:
    """One turn: the inbound message, the state to change, and read-only helpers."""

    inbound: Inbound
    state: ConversationState
    lookups: Lookups
    office: OfficeConfig
    t: Texts
    now: datetime
    tz: tzinfo
    deadlines: DeadlinePolicy
    rating_scale: int = 3
    first_contact: bool = False

    @property
    def word(self) -> str:
        """The message folded for matching commands and choices."""
        return normalize(self.inbound.text)

    @property
    def lang(self) -> str:
        return self.t.lang

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def day(self, moment: datetime) -> str:
        local = self.local(moment)
        return f"{local.month}月{local.day}日" if self.lang == "zh" else f"{local:%Y-%m-%d}"


@dataclass
class Outcome:
    """Replies to send, commands to apply, and replies that need the commands' results."""

    replies: list[Reply] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    after: Callable[[Results], list[Reply]] | None = None

    def say(self, text: str, choices: tuple[Choice, ...] = ()) -> Outcome:
        self.replies.append(Reply(text, choices))
        return self

    def extend(self, other: Outcome) -> Outcome:
        self.replies.extend(other.replies)
        self.commands.extend(other.commands)
        if other.after is not None:
            self.after = other.after
        return self


def numbered(labels: list[str]) -> tuple[Choice, ...]:
    return tuple(Choice(str(i), label) for i, label in enumerate(labels, start=1))


def pick(ctx: Context, labels: list[str]) -> int | None:
    """The 0-based index the citizen chose, by number or by the label's words."""
    number = choice_number(ctx.inbound.text)
    if number is not None:
        return number - 1 if 1 <= number <= len(labels) else None
    word = ctx.word
    if not word:
        return None
    for i, label in enumerate(labels):
        if normalize(label) == word:
            return i
    return None
