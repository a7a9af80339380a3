"""Which common question (知识库) a typed message asks, and how sure we are.

Chinese has no spaces: jieba cuts the words ("信访需要带什么材料" → 信访 / 需要 / 带 / 什么 /
材料), rapidfuzz compares them. Each entry is known by its question, its example phrasings
and its keywords (the office file's [[faq]]); a message scores against its best phrasing:

- the words both share, weighted by how rare each is among the entries (IDF), as a cosine;
- rapidfuzz's token-set ratio on the cut words, which forgives word order and extra words
  (damped by how much of the message the phrasing covers);

An answer is given only above a threshold tuned on tests/data/faq_questions.tsv (the README
reports its precision and recall); below it the message is a matter, as before.
"""

from __future__ import annotations

import logging
import math
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import jieba
from rapidfuzz import fuzz

# Particles and politeness that say nothing about which question is asked.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嘛",
        "么",
        "我",
        "我们",
        "你",
        "你们",
        "您",
        "他",
        "她",
        "它",
        "这",
        "那",
        "这个",
        "那个",
        "是",
        "在",
        "和",
        "与",
        "就",
        "都",
        "也",
        "还",
        "请问",
        "一下",
        "请",
        "谢谢",
        "你好",
        "您好",
        "麻烦",
        "想",
        "想问",
        "问",
        "问问",
        "个",
        "把",
        "被",
        "给",
        "让",
        "对",
        "从",
        "到",
        "吗？",
        "？",
        "?",
        "，",
        ",",
        "。",
        ".",
        "！",
        "!",
        "、",
        "：",
        ":",
        "；",
        ";",
        "“",
        "”",
        '"',
        "'",
        "（",
        "）",
        "(",
        ")",
        "一",
        "下",
    ]
)
# How much each measure counts in the score.
COSINE_WEIGHT = 0.5
FUZZ_WEIGHT = 0.5
# Thresholds, tuned on tests/data/faq_questions.tsv (README: "Answers to typed questions").
# At the menu a wrong answer costs a citizen with a matter a turn: only sure matches answer.
AT_MENU = 0.30
# Inside 常见问题 the citizen is asking a question: the best match from F1 answers.
IN_FAQ = 0.22

_ready = threading.Lock()
_loaded = False


def warm() -> None:
    """Load jieba's dictionary now (about a second) rather than during a citizen's turn."""
    global _loaded
    with _ready:
        if not _loaded:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _loaded = True


def words(text: str) -> list[str]:
    """The meaningful words of a text, folded (full-width → half-width, lower case)."""
    warm()
    folded = unicodedata.normalize("NFKC", text or "").lower()
    return [w for w in jieba.lcut_for_search(folded) if w.strip() and w not in STOPWORDS]


@dataclass(frozen=True)
class Match:
    entry: int  # index into the office's FAQ
    score: float  # 0..1


class FaqMatcher:
    """Built once per office from its FAQ phrasings: `phrasings[i]` are entry i's texts (its
    question, examples and keywords: see `phrasings_of`)."""

    def __init__(self, phrasings: Sequence[Sequence[str]]) -> None:
        self.docs = [[words(text) for text in texts if text] for texts in phrasings]
        entries_with: dict[str, int] = {}
        for docs in self.docs:
            for word in {w for doc in docs for w in doc}:
                entries_with[word] = entries_with.get(word, 0) + 1
        n = max(len(self.docs), 1)
        # A word every entry has tells them apart not at all; one only a single entry has, most.
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in entries_with.items()}
        # A word no entry uses says the message is about something else: it weighs as much as
        # the rarest word the FAQ has.
        self.unknown = math.log((n + 1) / 0.5)

    def best(self, text: str) -> Match | None:
        asked = words(text)
        if not asked:
            return None
        scored = [Match(i, self._score(asked, docs)) for i, docs in enumerate(self.docs)]
        top = max(scored, key=lambda m: m.score, default=None)
        return top if top is not None and top.score > 0 else None

    def _score(self, asked: list[str], docs: list[list[str]]) -> float:
        return max((self._similarity(asked, doc) for doc in docs if doc), default=0.0)

    def _similarity(self, asked: list[str], doc: list[str]) -> float:
        a, d = set(asked), set(doc)
        weight = self.idf.get
        shared = sum(weight(w, 0.0) ** 2 for w in a & d)
        norm_a = math.sqrt(sum(weight(w, self.unknown) ** 2 for w in a))
        norm_d = math.sqrt(sum(weight(w, 0.0) ** 2 for w in d))
        cosine = shared / (norm_a * norm_d) if norm_a and norm_d else 0.0
        ratio = fuzz.token_set_ratio(" ".join(asked), " ".join(doc)) / 100
        # The set ratio forgives extra words entirely ("低保 怎么 申请" ⊃ "怎么 申请"): damp it
        # by how much of the message the phrasing covers, a word weighing its IDF.
        covered = sum(weight(w, 0.0) for w in a & d) / sum(weight(w, self.unknown) for w in a)
        return COSINE_WEIGHT * cosine + FUZZ_WEIGHT * ratio * math.sqrt(covered)


def phrasings_of(question: str, examples: Sequence[str], keywords: Sequence[str]) -> list[str]:
    """An entry's texts to match against: each keyword alone, so that one telling word (仲裁,
    匿名, 催办) in a longer question still finds its entry."""
    return [question, *examples, *keywords]


@dataclass(frozen=True)
class Scores:
    """How a threshold does on labelled questions: of the answers given, how many were right
    (precision); of the questions the FAQ has, how many got their answer (recall)."""

    threshold: float
    precision: float
    recall: float
    answered: int


def evaluate(
    matcher: FaqMatcher, labelled: Sequence[tuple[str, int | None]], threshold: float
) -> Scores:
    """`labelled`: (question, its entry's index, or None when the FAQ does not answer it)."""
    answered = right = 0
    for text, expected in labelled:
        found = matcher.best(text)
        if found is not None and found.score >= threshold:
            answered += 1
            right += found.entry == expected
    askable = sum(1 for _, expected in labelled if expected is not None)
    return Scores(
        threshold,
        right / answered if answered else 1.0,
        right / askable if askable else 1.0,
        answered,
    )
