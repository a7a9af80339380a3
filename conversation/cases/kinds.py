"""The path each kind of matter follows: a petition (信访事项) or a suggestion (人民建议)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    # Under the legal limits and the local stages, watched and warned about, and counted in
    # the on-time measures.
    timed: bool
    # Followed up with a satisfaction survey (回访) when it closes, and counted in 满意率.
    surveyed: bool


PETITION = Kind("petition", timed=True, surveyed=True)
# A suggestion (Art. 29: studied, adopted or not, answered) asks for no decision on acceptance
# within 15 days, and an office is not judged by how satisfied its suggesters are.
SUGGESTION = Kind("suggestion", timed=False, surveyed=False)
KINDS = {kind.name: kind for kind in (PETITION, SUGGESTION)}
# What a citizen may rate (and what 满意率 counts).
SURVEYED_KINDS = tuple(name for name, kind in KINDS.items() if kind.surveyed)


def kind_of(name: str) -> Kind:
    """The rules for a case's `kind`; anything unknown takes the petition's (stricter) path."""
    return KINDS.get(name, PETITION)
