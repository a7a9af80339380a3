"""重复信访: when a new matter is one the same person filed before — the rules an office sets.

Candidates are narrowed first (the same person — the same identity or the same mobile — the
same category, filed within `window_days`); only then are their descriptions compared
(conversation/similarity.py), and a score of `similar_at` or more makes it the same matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True)
class RepeatRules:
    window_days: int = 180  # an earlier filing further back is a new matter
    similar_at: float = 44.0  # the similarity (0-100) from which a matter is the same one
    raise_at: int = 3  # the filing of the same matter that is raised (提级 / 包案)
    # Another person's matter this close is shown to staff as a possible duplicate (重件); stricter
    # than a person's own repeat, since different people word the same trouble differently.
    duplicate_at: float = 60.0


class Described(Protocol):
    @property
    def description(self) -> str: ...


D = TypeVar("D", bound=Described)


def most_similar(
    earlier: Iterable[D],
    description: str,
    rules: RepeatRules,
    similarity: Callable[[str, str], float],
) -> tuple[D, float] | None:
    """The earlier matter that reads most like `description`, if it scores `similar_at` or more
    (the repeat watch's own threshold, so the question and the later link agree)."""
    scored = [(e, similarity(e.description, description)) for e in earlier if e.description]
    best = max(scored, key=lambda pair: pair[1], default=None)
    return best if best is not None and best[1] >= rules.similar_at else None
