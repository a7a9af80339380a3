"""What a citizen's first words already say: where it happened, and what kind of matter it is.

"解放北路100号楼下的饭店天天半夜吵" → place 解放北路100号, category 环境保护. Both are guesses
the citizen confirms before anything is filed (flows/forms.py, the `_guess` step).
"""

from __future__ import annotations

from dataclasses import dataclass

from .office import Category, OfficeConfig
from .places import PlaceFinder


@dataclass(frozen=True)
class Story:
    place: str | None
    category: Category | None


def read(office: OfficeConfig, places: PlaceFinder | None, text: str) -> Story:
    place = places.find(text) if places is not None else None
    # The place's name says where, not what: "幸福里小区" is no sign of a housing matter.
    rest = text.replace(place, " ") if place else text
    return Story(place, office.suggest_category(rest))
