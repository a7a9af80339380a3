"""What every flow step receives (Context) and returns (Outcome), how a flow is declared (Flow),
and the words it listens for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cached_property

from ..catalog import Texts
from ..commands import Command, Results
from ..faq_match import FaqMatcher
from ..messages import Choice, Inbound, Reply
from ..office import OfficeConfig
from ..office_forms import MenuEntry
from ..places import PlaceFinder
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
# The citizen's own words about their matter, kept for staff, are cut to this length.
SAID_MAX = 200


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
    flows: FlowTable
    rating_scale: int = 3
    first_contact: bool = False
    # Whether a 验证码 can be texted (an SMS provider is set up): else only the 查询码 proves.
    sms_proof: bool = True
    # The office's common questions, for matching typed ones (None: no FAQ).
    faq: FaqMatcher | None = None
    # Reads a place from the citizen's words (None: places are always asked).
    places: PlaceFinder | None = None
    # A channel that follows cases but files none and reaches no person (SMS): its menu offers
    # only what it can do, and a filing or a call for staff is told where to go instead.
    follow_only: bool = False

    @cached_property
    def word(self) -> str:
        """The message folded for matching commands and choices (once a turn: the engine and
        the flow both ask)."""
        return normalize(self.inbound.text)

    @property
    def lang(self) -> str:
        return self.t.lang

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def day(self, moment: datetime) -> str:
        local = self.local(moment)
        return f"{local.month}月{local.day}日" if self.lang == "zh" else f"{local:%Y-%m-%d}"

    @property
    def in_form(self) -> bool:
        return self.state.flow in self.flows.forms

    def set_aside(self) -> None:
        """Leave the current flow for the menu, keeping a form in progress as a draft."""
        self.state.set_aside(self.flows.forms)

    def remember_words(self) -> None:
        """This message is the citizen telling their matter: staff asked for later get it."""
        words = self.inbound.text.strip()
        if words:
            self.state.said = words[:SAID_MAX]


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


Step = Callable[[Context], Awaitable[Outcome | None]]


@dataclass(frozen=True)
class Flow:
    """One flow, declared once.

    `name` is what the conversation state records while in it; `handle` takes a message there
    (None from it, or no `handle`: the message is for the main menu); `open` starts it from the
    menu (a form's after the state has entered it); a `form` is set aside and offered back.
    """

    name: str
    handle: Step | None = None
    open: Callable[[Context], Awaitable[Outcome]] | None = None
    form: bool = False
    menu: MenuEntry | None = None


class FlowTable:
    """The flows one office runs, looked up by name, by what the citizen sends, or by event."""

    def __init__(self, flows: Iterable[Flow], free_text: str) -> None:
        self._by_name = {flow.name: flow for flow in flows}
        entries = [(f.menu, f) for f in self._by_name.values() if f.menu is not None]
        # (entry, flow) pairs, in the order the menu lists them
        self.entries = tuple(sorted(entries, key=lambda pair: pair[0].order))
        self.forms = frozenset(f.name for f in self._by_name.values() if f.form)
        self.free_text = free_text  # the form a matter written at the menu starts

    def get(self, name: str) -> Flow | None:
        return self._by_name.get(name)

    def by_event(self, event: str) -> Flow | None:
        return next((flow for entry, flow in self.entries if entry.event == event), None)

    def chosen(self, word: str, t: Texts) -> Flow | None:
        """The menu entry a (normalized) message picks: its number, a synonym or its label."""
        for entry, flow in self.entries:
            if word == entry.key or word in entry.synonyms or word == normalize(entry.text(t)):
                return flow
        return None


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
