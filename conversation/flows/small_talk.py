"""Greetings and thanks: a message that is only that gets a warm word and the menu.

A message counts only when nothing is left of it but greetings, thanks and the little words
around them ("您好，在吗？", "好的谢谢您！"): "你好，我家楼下饭店天天半夜吵" is a matter.
"""

from __future__ import annotations

from typing import Literal

from ..validators import normalize

GREETINGS = (
    "你好", "您好", "你们好", "大家好", "在吗", "在不在", "有人吗", "有人在吗", "哈喽", "嗨", "喂",
    "早", "早安", "早上好", "上午好", "中午好", "下午好", "晚上好", "hello", "hi", "hey", "goodmorning",
    "goodafternoon", "goodevening",
)  # fmt: skip
THANKS = (
    "谢谢", "多谢", "感谢", "谢了", "谢啦", "辛苦了", "辛苦", "麻烦了", "thanks", "thankyou", "thx",
    "cheers",
)  # fmt: skip
# Words that go with a greeting or thanks and say nothing about a matter by themselves.
FILLERS = (
    "啊", "呀", "哈", "哈哈", "呢", "吧", "哦", "噢", "嗯", "了", "啦", "的", "你", "您", "们",
    "大家", "好的", "好", "请问", "工作人员", "同志", "非常", "十分", "太", "真", "很", "帮忙",
    "帮助", "ok", "there", "so", "much", "very",
)  # fmt: skip
# Longest first, so 你好 is read before the 你 it starts with.
_TOKENS = sorted({*GREETINGS, *THANKS, *FILLERS}, key=len, reverse=True)

SmallTalk = Literal["greeting", "thanks"]
# Longer than this, a message says more than hello or thank you.
LONGEST = 40


def small_talk(text: str) -> SmallTalk | None:
    """ "thanks" or "greeting" when the message is nothing else; None for anything with content."""
    if len(text) > LONGEST:
        return None
    rest = "".join(ch for ch in normalize(text) if ch.isalnum())
    heard: set[str] = set()
    while rest:
        token = next((t for t in _TOKENS if rest.startswith(t)), None)
        if token is None:
            return None
        heard.add(token)
        rest = rest[len(token) :]
    if heard & set(THANKS):
        return "thanks"
    return "greeting" if heard & set(GREETINGS) else None
