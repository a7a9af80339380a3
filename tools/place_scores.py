"""How often the place and the category read from a first message are right.

    PYTHONPATH=. python tools/place_scores.py [office.toml] [-v]

Scores conversation/places.py and the office's category keywords on the labelled first
messages of tests/data/first_messages.tsv (an office with its own gazetteer writes its own
set in that format). Precision: of the guesses made, how many were right; recall: of the
messages that name a place (or have a category), how many got the right guess. `-v` lists
every miss.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from conversation.office import OfficeConfig, load_office
from conversation.places import PlaceFinder
from conversation.story import read

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "first_messages.tsv"
# Written after the tuning, never used for it: the figure to believe.
HELDOUT = DATA.with_name("first_messages_heldout.tsv")


@dataclass(frozen=True)
class Labelled:
    message: str
    place: str | None
    category: str


@dataclass
class Score:
    guessed: int = 0
    right: int = 0
    # a guess that holds the expected place or lies within it ("人民路" for "人民路45号")
    near: int = 0
    expected: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.right / self.guessed if self.guessed else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.expected if self.expected else 1.0


def labelled(path: Path = DATA) -> list[Labelled]:
    rows = []
    for line in path.read_text("utf-8").splitlines():
        if not line or line.startswith("#") or line.startswith("message\t"):
            continue
        message, place, category = line.split("\t")
        rows.append(Labelled(message, None if place == "-" else place, category))
    return rows


def place_score(finder: PlaceFinder, rows: list[Labelled]) -> Score:
    score = Score(expected=sum(1 for r in rows if r.place))
    for row in rows:
        found = finder.find(row.message)
        if found is None:
            if row.place:
                score.misses.append(f"missed  {row.message}  (want {row.place})")
            continue
        score.guessed += 1
        if found == row.place:
            score.right += 1
            continue
        if row.place and (row.place in found or found in row.place):
            score.near += 1
        score.misses.append(f"wrong   {row.message}  got {found}, want {row.place or '-'}")
    return score


def category_score(office: OfficeConfig, finder: PlaceFinder, rows: list[Labelled]) -> Score:
    score = Score(expected=len(rows))
    for row in rows:
        suggested = read(office, finder, row.message).category
        if suggested is None:
            score.misses.append(f"none    {row.message}  (want {row.category})")
            continue
        score.guessed += 1
        if suggested.key == row.category:
            score.right += 1
        else:
            score.misses.append(f"wrong   {row.message}  got {suggested.key}, want {row.category}")
    return score


def walks(office: OfficeConfig, finder: PlaceFinder, rows: list[Labelled]) -> dict[int, int]:
    """How many messages each filing takes when the citizen accepts what is right and corrects
    what is wrong, counting the last four alike (photos skipped, name, mobile, submit)."""
    counts: dict[int, int] = {}
    for row in rows:
        story = read(office, finder, row.message)
        if story.place is None or story.category is None:
            # no guess, or the place alone: one reply for it (a corrected place is that reply),
            # one for the category from the list
            n = 1 + 2 + 4
        else:
            wrong = (story.place != row.place) + (story.category.key != row.category)
            # one wrong: "改…" and its answer; both: the second at the summary (2, 3, answer)
            n = 1 + 1 + 4 + {0: 0, 1: 1, 2: 4}[wrong]
        counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items()))


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "-v"]
    office = load_office(args[0] if args else None)
    finder = PlaceFinder(office.places)
    for path in (DATA, HELDOUT):
        rows = labelled(path)
        places = place_score(finder, rows)
        categories = category_score(office, finder, rows)
        print(f"{path.name}: {len(rows)} first messages, {places.expected} naming a place")
        print(
            f"  place     precision {places.precision:.3f}  recall {places.recall:.3f}  "
            f"guessed {places.guessed}  right {places.right}  near {places.near}"
        )
        print(
            f"  category  precision {categories.precision:.3f}  recall {categories.recall:.3f}  "
            f"suggested {categories.guessed}  right {categories.right}"
        )
        print(
            "  messages to file:",
            ", ".join(f"{n}: {c}" for n, c in walks(office, finder, rows).items()),
        )
        if "-v" in sys.argv:
            for line in places.misses + categories.misses:
                print("   ", line)


if __name__ == "__main__":
    main()
