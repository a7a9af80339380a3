"""Precision and recall of the FAQ matcher on the labelled questions, per threshold.

    PYTHONPATH=. python tools/faq_scores.py [office.toml]

An office that changes its [[faq]] entries runs this with its own labelled questions
(tests/data/faq_questions.tsv's format) before changing AT_MENU / IN_FAQ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conversation.faq_match import AT_MENU, IN_FAQ, FaqMatcher, evaluate, phrasings_of
from conversation.office import load_office

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def labelled(path: Path) -> list[tuple[str, int | None]]:
    rows = []
    for line in path.read_text("utf-8").splitlines()[1:]:
        if not line or line.startswith("#") or line.startswith("text\t"):
            continue
        text, expected = line.split("\t")
        if expected in ("greeting", "thanks"):
            continue  # small talk, not the matcher's
        rows.append((text, None if expected == "none" else int(expected) - 1))
    return rows


def main() -> None:
    office = load_office(sys.argv[1] if len(sys.argv) > 1 else None)
    matcher = FaqMatcher(
        [phrasings_of(e.question("zh"), e.examples, e.keywords) for e in office.faq]
    )
    for name in ("faq_questions.tsv", "faq_heldout.tsv"):
        rows = labelled(DATA / name)
        print(f"{name}: {len(rows)} questions")
        for threshold in (0.18, 0.22, 0.26, 0.30, 0.34, 0.38, 0.42):
            s = evaluate(matcher, rows, threshold)
            mark = (
                " ← in 常见问题"
                if threshold == IN_FAQ
                else " ← at the menu"
                if threshold == AT_MENU
                else ""
            )
            print(
                f"  {threshold:.2f}  precision {s.precision:.3f}  recall {s.recall:.3f}  answered {s.answered}{mark}"
            )


if __name__ == "__main__":
    main()
