"""督办 (supervision) in levels (三级抄告): who is alerted at each level, and what raises it.

A case starts at level 0 (no supervision). A lapsed deadline or stage raises it one step, once
per lapse; so does the citizen's urging (催办) once it passes the office's count. Level `n` is
the n-th declared level (1 the handling department's duty staff, 2 the department head, 3 the
督查室 or a leader, as the office file says); it never goes past the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

# Why a level rose (the `cause` of an `escalated` event).
CAUSES = ("deadline", "urged", "repeat", "staff")
# A target that means "the staff of the case's handling department(s)".
HANDLING = "handling"


@dataclass(frozen=True)
class Level:
    number: int
    name: str
    # Staff usernames, `role:leader` (every leader) or `handling` (the case's departments).
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationRules:
    levels: tuple[Level, ...] = ()
    # 催办 beyond this many raise the level (once); 0 = urging never does.
    urge_limit: int = 2

    @property
    def top(self) -> int:
        return len(self.levels)

    def level(self, number: int) -> Level | None:
        return self.levels[number - 1] if 1 <= number <= len(self.levels) else None

    def next_level(self, current: int) -> int | None:
        """The level one step above `current`, or None at the top (or with no levels)."""
        return current + 1 if current < self.top else None

    def urging_raises(self, urged_count: int) -> bool:
        return self.urge_limit > 0 and urged_count > self.urge_limit
