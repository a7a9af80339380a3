"""The engine's replies as one short SMS: numbered choices on one line, blank lines gone, and a
length cap (every 67 characters is another billed segment) with a pointer to the full text."""

from __future__ import annotations

from collections.abc import Sequence

from .messages import Reply

# Five segments of 67 characters: a case's page with its latest steps fits; a longer history is
# paged by the conversation itself ("更多").
SMS_MAX_CHARS = 335


def sms_answer(replies: Sequence[Reply], cut: str, limit: int = SMS_MAX_CHARS) -> str:
    """One SMS text for a turn's replies; `cut` marks where it had to be shortened. The last
    reply's choices are kept whatever is cut: they say what the citizen can answer."""
    lines: list[str] = []
    tail: list[str] = []
    for reply in replies:
        lines += [line.strip() for line in reply.text.splitlines() if line.strip()]
        if reply.choices:
            # "1 补充材料  2 催办  3 评价": one line instead of one per choice.
            tail = ["  ".join(f"{c.key} {c.label}" for c in reply.choices)]
            lines += tail
        else:
            tail = []
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    body = lines[: len(lines) - len(tail)]
    room = max(0, limit - len(cut) - sum(len(line) + 1 for line in tail))
    kept: list[str] = []
    used = 0
    for line in body:
        used += len(line) + (1 if kept else 0)
        if used > room:
            break
        kept.append(line)
    if not kept and body:
        kept = [body[0][:room]]
    return "\n".join(["\n".join(kept) + cut, *tail])
