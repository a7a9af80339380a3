"""Satisfaction scales: the common 3-level one and the national 好差评 5 levels."""

from __future__ import annotations

from .catalog import ZH, Texts

SCALES = (3, 5)


def labels(t: Texts, scale: int) -> list[str]:
    return [t(f"scale{scale}.{score}") for score in range(1, scale + 1)]


def zh_label(scale: int, score: int) -> str:
    """The label as recorded on the case, always in Chinese so reports read the same."""
    return ZH[f"scale{scale}.{score}"]


def is_unhappy(scale: int, score: int) -> bool:
    """不满意 on three levels; the two lowest (不满意, 非常不满意) on five — the 差评 of 好差评."""
    return score == 3 if scale == 3 else score >= 4
