"""Where a matter happened, read from the citizen's own words ("解放北路100号楼下的饭店天天半夜吵").

Only a guess the citizen confirms (flows/story.py): a wrong one costs a "修改", never a wrong
case. Three sources, joined where they touch in the text:

- the office's own gazetteer (`[places]` in the office file): its streets (街道, 镇), roads,
  communities and landmarks, which no general library knows;
- cpca's table of China's provinces, cities and districts (Aho-Corasick over the official
  codes), for "广州市天河区…" — its matcher only, so a road named after a city (中山路, 长春路)
  is not taken for the city;
- jieba's word cutting and place tags for the rest: a name followed by 路/街/巷/小区/花园/村…
  (人民路, 幸福里小区), then the numbers that follow (100号, 3栋2单元).

Pure: the tables load once, in memory, at first use; nothing is read or sent per message.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick
import jieba
import jieba.posseg

from .validators import LOCATION_TEXT_MAX


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A name ending in one of these is a place (人民路, 幸福里小区, 城关镇); longest first.
SUFFIXES = (
    "小区", "社区", "花园", "家园", "公寓", "新村", "新城", "大厦", "广场", "市场", "商场", "超市",
    "中心", "大道", "胡同", "街道", "公园", "医院", "小学", "中学", "学校", "大学",
    "幼儿园", "车站", "地铁站", "菜场", "苑", "路", "街", "巷", "弄", "村", "镇", "乡",
    "庄", "桥", "湾", "园", "城", "府", "坊", "区", "县", "站",
)  # fmt: skip
# Words that end like places but name none by themselves ("马路上很吵", "小区里"): a place
# only when a name stands before them ("幸福 小区").
GENERIC = _words(
    "马路 道路 公路 小区 社区 花园 公寓 大厦 广场 市场 商场 中心 大道 街道 公园 医院 小学 "
    "中学 学校 大学 幼儿园 车站 菜场 菜市场 农贸市场 城市 城区 市区 郊区 农村 乡村 超市 "
    "本市 我市 全市 本区 全区 县城 城里 外地 本地 当地 辖区 片区 园区 "
    "校园 单位 工地 路口 路段 村委 社区医院 地铁站 停车场 公交站 村子 "
    "站 区 园 城 街 路 巷 村 镇 乡 桥 庄"
)
# Tokens that never begin or continue a place name (pronouns, verbs of saying, particles).
NOT_NAME_FLAGS = frozenset({"p", "r", "c", "u", "uj", "ul", "uz", "ud", "ug", "uv", "d", "x",
                            "y", "e", "o", "v", "t", "q", "m", "zg", "vd", "ad"})  # fmt: skip
NOT_NAME = _words(
    "我 我家 我们 你们 他们 家 住 在 的 是 有 到 从 对 给 被 把 和 与 及 了 就 都 很 太 又 天天 每天 "
    "晚上 半夜 白天 附近 门口 楼下 楼上 对面 旁边 这个 那个 一个 有人 一直 已经 没有 什么 "
    "反映 投诉 举报 请求 希望 要求 问题 情况 现在 今天 昨天 经常 严重 一些 这边 那边 全 "
    # ending like a place, naming none
    "家里 楼里 里面 这里 那里 哪里 心里 夜里 医院里 学校里 公司 周边 一路 一街 全村 本村 我村 "
    "镇里 区里 县里 市里 省里 乡里 城管 全城 满城 进城 老城 一园 "
    "走路 出路 思路 套路 线路 电路 上路 迷路 让路 修路 铺路 带路 拦路 半路 后路 门路 来路 去路 "
    "退路 网路 一路上 道路 过马路 原路 马路上 路上 街上 路边 街边 马路边 村里 镇上 城里 "
    # neither names nor places, yet cut as nouns before a place word
    "以后 之后 以前 之前 整条 整个 这条 那条 一条 旁 边 施工 通勤 回家 上班 下班 整条路 这条路 "
    "那条路 一条路 垃圾站"
)
NOT_PLACE_NS = _words("中国 全国 国家 本市 当地 外地 本地 国内 省内 市内 中华 东西 南北 河水")
# What may follow a place and belongs to it: numbers of the house, building, unit, room; the
# gates and crossings of a place. Relative words (楼下, 附近, 对面) are left out: the place is
# the one named, not a spot near it.
DETAIL = re.compile(
    r"(?:[0-9０-９一二三四五六七八九十百零两甲乙丙丁A-Za-z]+[-－—]?"
    r"(?:号楼(?![下上里前后道梯顶])|号院|号|栋|幢|座|单元|层|楼(?![下上里前后道梯顶])|室|弄|巷|排|组|期|区)"
    r"|[东西南北正后侧]门|交叉口|十字路口|丁字路口|路口|交汇处"
    # the office, clinic or car park of a place names the place more closely
    r"|街道办事处|办事处|居委会|村委会|卫生院|派出所|镇政府|政府|停车场|菜市场|中心小学)+"
)
# Two roads' crossing: "人民路和建设路交叉口".
JOINERS = frozenset("和与跟及、")
CROSSING = re.compile(r"(?:交叉口|十字路口|丁字路口|路口|交汇处)")
# A province, city or district name cpca knows only stands for itself when not the head of a
# road's name (中山路 is not 中山市): these may not follow it.
ROAD_HEADS = "路街道巷弄大桥里"
MAX_NAME = 10  # characters of a name before its suffix: longer is a sentence, not a name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gazetteer:
    """The office's own places (office file `[places]`), by kind; all are matched alike."""

    areas: tuple[str, ...] = ()
    roads: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    landmarks: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        every = {*self.areas, *self.roads, *self.communities, *self.landmarks}
        # Longest first, then in character order: two names of one length that overlap in a
        # message are chosen alike in every process (a set's order changes with the hash seed).
        return tuple(sorted((n for n in every if n), key=lambda n: (-len(n), n)))


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    # a place word alone ("小区", "小学"): it lengthens the place before it, names none itself
    weak: bool = False


class PlaceFinder:
    """`find(text)`: the place a message names, in the citizen's own words, or None."""

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or Gazetteer()
        # Matched as they are written, beside jieba's cutting, not added to its dictionary:
        # that one is shared (FAQ matching, repeats) and must cut alike for every office.
        self._names = self.gazetteer.names()
        self._automaton = _automaton(self._names)
        # Tables loaded now, at start-up, not within the first citizen's reply (a WeChat reply
        # has five seconds): cpca's divisions and jieba's word tags.
        _admin_matcher()
        # Once, not per message: every setLogLevel clears the cache of every logger.
        jieba.setLogLevel(logging.WARNING)
        _cut("解放路")

    def find(self, text: str) -> str | None:
        text = " ".join((text or "").split())
        if len(text) < 2:
            return None
        pieces = sorted(
            {*self._gazetteer_pieces(text), *_admin_pieces(text), *_word_pieces(text)},
            key=lambda p: (p.start, -p.end),
        )
        spans = _join(text, pieces)
        if not spans:
            return None
        # The fullest description wins (most characters); the first one when equal.
        start, end = max(spans, key=lambda s: (s[1] - s[0], -s[0]))
        place = text[start:end].strip(" ，,。")
        return place if 2 <= len(place) <= LOCATION_TEXT_MAX else None

    def _gazetteer_pieces(self, text: str) -> Iterable[_Piece]:
        """The office's names where they occur, the longest first; a name overlapping one
        already taken is not. One pass of the automaton finds every occurrence of every name:
        a search per name cost ~26 ms a message with a city's 3,000 roads and communities."""
        if self._automaton is None:
            return
        found: dict[int, list[tuple[int, int]]] = {}  # a name's rank → where it occurs
        for last, (rank, length) in self._automaton.iter(text):
            found.setdefault(rank, []).append((last + 1 - length, last + 1))
        taken: list[tuple[int, int]] = []
        for rank in sorted(found):
            after = 0  # a name's occurrences as a regular expression finds them: not overlapping
            for span in sorted(found[rank]):
                if span[0] < after:
                    continue
                after = span[1]
                if not any(s < span[1] and span[0] < e for s, e in taken):
                    taken.append(span)
                    yield _Piece(*span)


def _automaton(names: tuple[str, ...]) -> Any:
    """An Aho-Corasick automaton of the names (pyahocorasick, which cpca also uses), each
    keyed to its rank and length; None without names."""
    if not names:
        return None
    automaton = ahocorasick.Automaton()
    for rank, name in enumerate(names):
        automaton.add_word(name, (rank, len(name)))
    automaton.make_automaton()
    return automaton


def _word_pieces(text: str) -> Iterable[_Piece]:
    """Named places by jieba's cutting: a place word, or names before a place suffix."""
    words: list[tuple[int, int, str, str]] = []
    at = 0
    for pair in _cut(text):
        words.append((at, at + len(pair.word), pair.word, pair.flag))
        at += len(pair.word)
    for i, (start, end, word, flag) in enumerate(words):
        if not _placeish(word, flag):
            continue
        # Names before it ("人民" 路, "幸福 里" 小区): at most two, not over MAX_NAME.
        first = start
        for j in (i - 1, i - 2):
            if j < 0 or not _name_part(words[j][2], words[j][3]):
                break
            if end - words[j][0] > MAX_NAME + len(word):
                break
            first = words[j][0]
        yield _Piece(first, end, weak=first == start and word in GENERIC)


def _placeish(word: str, flag: str) -> bool:
    if word in GENERIC:
        return True
    if flag == "ns" and len(word) >= 2 and word not in NOT_PLACE_NS:
        return True
    if flag.startswith("v") or flag in NOT_NAME_FLAGS or flag in ("i", "l"):
        return False  # 走路, 修路: doing, not a place
    return len(word) >= 2 and word.endswith(SUFFIXES) and word not in NOT_NAME


def _name_part(word: str, flag: str) -> bool:
    if word in NOT_NAME or flag in NOT_NAME_FLAGS or word in GENERIC:
        return False
    return bool(re.fullmatch(r"[\u4e00-\u9fffA-Za-z]{1,6}", word))


def _admin_pieces(text: str) -> Iterable[_Piece]:
    """Provinces, cities and districts by cpca's table of China's administrative divisions."""
    matcher = _admin_matcher()
    if matcher is None:
        return
    for match in matcher.iter(text):
        start, end = match.start_index, match.end_index + 1
        name = match.origin_value
        full = any(name == info.name for info in match.attr_infos)
        if not full and end < len(text) and text[end] in ROAD_HEADS:
            continue  # 中山路, 长春街: a road named after the city
        yield _Piece(start, end)


def _join(text: str, pieces: list[_Piece]) -> list[tuple[int, int]]:
    """Pieces that touch (or two roads joined by 和 before 交叉口) make one place; each place
    then takes the house numbers and gates that follow it."""
    spans: list[list[int]] = []
    for piece in pieces:
        if spans and piece.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], piece.end)
            continue
        if piece.weak:
            continue
        if (
            spans
            and piece.start == spans[-1][1] + 1
            and text[spans[-1][1]] in JOINERS
            and _ends_at_crossing(text, piece)
        ):
            spans[-1][1] = piece.end
            continue
        spans.append([piece.start, piece.end])
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        detail = DETAIL.match(text, end)
        if detail:
            end = detail.end()
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def _ends_at_crossing(text: str, piece: _Piece) -> bool:
    detail = DETAIL.match(text, piece.end)
    end = detail.end() if detail else piece.end
    return bool(CROSSING.search(text[piece.start : end][-5:]))


_lock = threading.Lock()
_matcher: Any = None
_tried = False


def _admin_matcher() -> Any:
    """cpca's matcher, built once (it reads its bundled table of ~3,000 divisions)."""
    global _matcher, _tried
    with _lock:
        if not _tried:
            _tried = True
            try:
                import cpca  # a second or so to build; only the matcher is used

                _matcher = cpca.matcher
            except ImportError:  # pragma: no cover - a declared dependency
                log.warning("cpca is not installed: provinces and cities are not recognised")
        return _matcher


def _cut(text: str) -> list[jieba.posseg.pair]:
    # Without the HMM guess at words outside the dictionary: a fifth of the CPU (the
    # description's turn is the walk's costliest form step), and tools/place_scores.py scores
    # the same on both labelled sets — a name it does not know is read by its suffix anyway.
    return list(jieba.posseg.cut(text, HMM=False))
