"""Reading a citizen's answer to a satisfaction survey: a rating, an opt-out, or unclear.

Pure and table-driven. The grammar of a rating reply is

    [reference] rating [the same rating again] [reference] [comment]

with spaces and punctuation anywhere between the parts: "1", "１。", "满意", "1 7K3M",
"7K3M满意", "【7K3M】1", "1满意 处理得很及时". Opt-out words are looked for first, so "T" or
"退订" never reads as anything else. Everything else is `Unclear`: the survey asks once more
rather than guess.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .codes import ALPHABET
from .rating import SCALES

MAX_COMMENT = 500


@dataclass(frozen=True, slots=True)
class Rated:
    """A score on the configured scale (1 is the best); `reference` is a case's last four
    characters when the citizen named one; `comment` is the free text after the rating."""

    score: int
    reference: str | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class OptOut:
    """The citizen asked for no more SMS (回复TD退订): the number must never be texted again."""

    word: str


@dataclass(frozen=True, slots=True)
class Unclear:
    """Neither a rating nor an opt-out; `reference` when the citizen named a case all the same."""

    reference: str | None = None


SurveyReply = Rated | OptOut | Unclear

# Whole-message opt-out words (any case, punctuation ignored): TD/T/退订 in Chinese practice, R for
# 拒收 on marketing templates, N as a plain no, STOP/UNSUBSCRIBE as international carriers use.
OPT_OUT_WORDS = frozenset({"TD", "T", "R", "N", "STOP", "UNSUBSCRIBE", "退订", "拒收"})
# These mean opt-out wherever they stand ("不要再发了，退订"): better one rating lost than a
# citizen texted against their will.
OPT_OUT_ANYWHERE = ("退订", "拒收")

# Words for a rating, graded on the five levels of 好差评 (1 非常满意 … 5 非常不满意); the three-
# level scale folds them (FIVE_TO_THREE). Matched longest first, so 不满意 is never read as 满意
# and 非常不满意 never as 非常满意. 比较满意 is read as 基本满意 (the "fairly satisfied" level);
# words such as 一般 or 好评 are left out on purpose: they do not name one level.
RATING_WORDS: tuple[tuple[str, int], ...] = (
    ("非常满意", 1),
    ("十分满意", 1),
    ("特别满意", 1),
    ("很满意", 1),
    ("满意", 2),
    ("基本满意", 3),
    ("比较满意", 3),
    ("还算满意", 3),
    ("不满意", 4),
    ("不太满意", 4),
    ("非常不满意", 5),
    ("十分不满意", 5),
    ("特别不满意", 5),
    ("很不满意", 5),
    ("very satisfied", 1),
    ("satisfied", 2),
    ("fairly satisfied", 3),
    ("not satisfied", 4),
    ("dissatisfied", 4),
    ("very dissatisfied", 5),
)
FIVE_TO_THREE = {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}
CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}

_WORD_PATTERNS = tuple(
    (re.compile(re.escape(word).replace(r"\ ", r"\s+"), re.IGNORECASE), grade, word.isascii())
    for word, grade in sorted(RATING_WORDS, key=lambda item: -len(item[0]))
)
_WORD_STARTS = frozenset(word[0].lower() for word, _ in RATING_WORDS)
# A whole case code written out (XF20261122-7K3M9Q): its last four characters are the reference.
_CASE_CODE = re.compile(r"XF\s*\d{8}\s*[-—_ ]?\s*([0-9A-Z]{6})(?![0-9A-Z])", re.IGNORECASE)
_SHORT_REFERENCE = re.compile(r"[0-9A-Za-z]{4}(?![0-9A-Za-z])")
# Crockford base32: a citizen who reads a code aloud or copies it by hand may write I, L or O.
_READ_ALOUD = str.maketrans("ILO", "110")
_COMMENT_LEAD = " \t\r\n,.，。、:：;；!！?？-—~～"


def read_reply(text: str, scale: int) -> SurveyReply:
    """What the citizen answered, on a scale of `scale` (3 or 5) levels; any text is read."""
    if scale not in SCALES:
        raise ValueError(f"a survey scale has 3 or 5 levels, not {scale}")
    reader = _Reader(text or "")
    if (word := reader.opt_out()) is not None:
        return OptOut(word)
    return reader.rating(scale)


def _is_separator(char: str) -> bool:
    """Spaces, punctuation and symbols (emoji included): what may stand between the parts."""
    return char.isspace() or unicodedata.category(char)[0] in "PSZ"


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


class _Reader:
    """The text folded (NFKC, per character) with a map back to the original for the comment."""

    def __init__(self, original: str) -> None:
        self.original = original
        folded: list[str] = []
        self.origin: list[int] = []
        for index, char in enumerate(original):
            for part in unicodedata.normalize("NFKC", char):
                folded.append(part)
                self.origin.append(index)
        self.text = "".join(folded)

    def opt_out(self) -> str | None:
        upper = self.text.upper()
        for word in OPT_OUT_ANYWHERE:
            if word in upper:
                return word
        # "T.D.", "td" and "TD 7K3M" are all TD; a reference beside the word changes nothing.
        tokens = [token for token in re.split(r"[^0-9A-Z\u4e00-\u9fff]+", upper) if token]
        words = "".join(
            token for token in tokens if token in OPT_OUT_WORDS or _reference(token) is None
        )
        return words if words in OPT_OUT_WORDS else None

    def rating(self, scale: int) -> SurveyReply:
        reference: str | None = None
        score, position = self.score(self.skip(0), scale)
        if score is None:  # "Very satisfied" is a rating, not the reference VERY and a word
            reference, position = self.reference(self.skip(0))
            score, position = self.score(self.skip(position), scale)
        if score is None:
            return Unclear(reference)
        again, after = self.score(self.skip(position), scale)
        if again is not None:
            if again != score:
                return Unclear(reference)  # "1 不满意": two different answers, ask again
            position = after
        if reference is None:
            named, after = self.reference(self.skip(position))
            if named is not None:
                reference, position = named, after
        if not 1 <= score <= scale:
            return Unclear(reference)
        return Rated(score, reference, self.comment(position))

    def skip(self, position: int) -> int:
        while position < len(self.text) and _is_separator(self.text[position]):
            position += 1
        return position

    def reference(self, position: int) -> tuple[str | None, int]:
        code = _CASE_CODE.match(self.text, position)
        if code:
            tail = code.group(1).upper().translate(_READ_ALOUD)
            if all(char in ALPHABET for char in tail):
                return tail[-4:], code.end()
        short = _SHORT_REFERENCE.match(self.text, position)
        if short and (position == 0 or not _is_ascii_alnum(self.text[position - 1])):
            found = _reference(short.group())
            if found is not None:
                return found, short.end()
        return None, position

    def score(self, position: int, scale: int) -> tuple[int | None, int]:
        """The rating at `position` (out-of-scale numbers too, so they can be refused)."""
        starts_word = self.text[position : position + 1].lower() in _WORD_STARTS
        for pattern, grade, english in _WORD_PATTERNS if starts_word else ():
            word = pattern.match(self.text, position)
            # An English word must end where a word ends ("satisfiedly" is not "satisfied");
            # a Chinese one may run straight into a reference ("满意7K3M").
            if word and not (english and _is_ascii_alnum(self.text[word.end() : word.end() + 1])):
                return (grade if scale == 5 else FIVE_TO_THREE[grade]), word.end()
        if position >= len(self.text):
            return None, position
        char, end = self.text[position], position + 1
        following = self.text[end : end + 1]
        if char in "0123456789":
            # "12", "1.5" and "1a" are something else than the digit 1.
            decimal = following in (".", ",") and self.text[end + 1 : end + 2].isdigit()
            if _is_ascii_alnum(following) or decimal:
                return None, position
            return int(char), end
        if char in CHINESE_DIGITS:
            # 一 alone, or before a rating word ("三不满意"); not the start of a word such as 一般.
            alone = not following or _is_separator(following) or following.isascii()
            if alone or self.score(end, scale)[0] is not None:
                return CHINESE_DIGITS[char], end
        return None, position

    def comment(self, position: int) -> str:
        start = self.origin[position] if position < len(self.origin) else len(self.original)
        comment = self.original[start:].lstrip(_COMMENT_LEAD).strip()
        if not any(char.isalnum() for char in comment):
            return ""
        return comment[:MAX_COMMENT]


def _reference(token: str) -> str | None:
    """Four Crockford characters as a case reference, upper-cased and with I/L/O read as 1/1/0.

    Four letters without a digit count only in capitals (as the SMS printed them), so that a
    short English word such as "good" is not taken for a reference.
    """
    if len(token) != 4:
        return None
    folded = token.upper().translate(_READ_ALOUD)
    if not all(char in ALPHABET for char in folded):
        return None
    if not any(char.isdigit() for char in token) and not token.isupper():
        return None
    return folded
