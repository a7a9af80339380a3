"""What reading a matter's place costs as the office's gazetteer grows.

    python benchmarks/places.py [--messages 300]

A city's office file lists its roads, communities and landmarks (`[places]`), easily thousands.
Each description a citizen sends is searched for all of them (conversation/places.py). This
times `PlaceFinder.find` per message with gazetteers of 0, 300 and 3,000 names, beside the
former search (one regular expression per name, kept here as the baseline) in the same run.
Figures are process CPU ms per message.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conversation.places import Gazetteer, PlaceFinder, _Piece

MESSAGES = (
    "小区门口的路灯坏了一个多月，晚上很黑，在幸福路12号旁边",
    "光明花园3栋楼下的饭店天天半夜吵，吵得孩子睡不着",
    "建设路和人民路交叉口的红绿灯不亮了",
    "我们村的路坑坑洼洼，下雨天根本走不了",
)
CHARS = "东西南北中华人民建设解放幸福和平友谊光明新华胜利朝阳文化长江黄河红旗团结前进"


def gazetteer(size: int) -> Gazetteer:
    rng = random.Random(size)
    names: set[str] = set()
    while len(names) < size:
        suffix = rng.choice(("路", "街", "小区", "花园", "社区"))
        names.add("".join(rng.sample(CHARS, rng.randint(2, 3))) + suffix)
    return Gazetteer(roads=tuple(sorted(names)))


def per_name(finder: PlaceFinder) -> Callable[[str], list[_Piece]]:
    """The former search: a regular expression per name, longest first."""

    def pieces(text: str) -> list[_Piece]:
        taken: list[tuple[int, int]] = []
        out = []
        for name in finder._names:
            for found in re.finditer(re.escape(name), text):
                span = found.span()
                if not any(s < span[1] and span[0] < e for s, e in taken):
                    taken.append(span)
                    out.append(_Piece(*span))
        return out

    return pieces


def ours_of(finder: PlaceFinder) -> Callable[[str], list[_Piece]]:
    return lambda text: list(finder._gazetteer_pieces(text))


def cpu_ms(work: Callable[[str], object], messages: int) -> float:
    started = time.process_time()
    for n in range(messages):
        work(MESSAGES[n % len(MESSAGES)])
    return (time.process_time() - started) / messages * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    print("names   find() ms   of which the gazetteer   the former per-name search")
    for size in (0, 300, 3000):
        finder = PlaceFinder(gazetteer(size))
        cpu_ms(finder.find, 20)  # warm
        whole = cpu_ms(finder.find, args.messages)
        ours = cpu_ms(ours_of(finder), args.messages)
        former = cpu_ms(per_name(finder), args.messages)
        print(f"{size:>5}   {whole:>8.3f}   {ours:>22.3f}   {former:>26.3f}")


if __name__ == "__main__":
    main()
