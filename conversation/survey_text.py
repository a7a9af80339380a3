"""The survey SMS text, and SMS length counted the way Chinese providers bill it.

Alibaba and Huawei Cloud count every character as one (Chinese, letters, digits and punctuation
alike), the signature with its 【】 included: up to 70 is one SMS, longer texts are sent in
segments of 67 (protocols.md §3.4). One segment is cheaper and, on old handsets, reads better.
"""

from __future__ import annotations

import math

from . import rating
from .catalog import Texts

SINGLE_SMS = 70
SEGMENT = 67
# Tried in order: the first wording that fits one SMS wins, else the last (shortest) is sent.
WORDINGS = ("survey.sms.full", "survey.sms.medium", "survey.sms.short")


def sms_length(text: str, sign_name: str = "") -> int:
    """Characters as the provider counts them, with the 【签名】 it adds in front."""
    return len(text) + (len(sign_name) + 2 if sign_name else 0)


def sms_segments(length: int) -> int:
    """How many billed SMS a text of `length` characters takes (one up to 70, then 67 each)."""
    if length <= SINGLE_SMS:
        return 1
    return math.ceil(length / SEGMENT)


def survey_options(t: Texts, scale: int) -> str:
    """ "1满意 2基本满意 3不满意": the scale as the reply digits and their labels."""
    return t("survey.sms.separator").join(
        t("survey.sms.option", n=score, label=label)
        for score, label in enumerate(rating.labels(t, scale), start=1)
    )


def survey_sms(t: Texts, scale: int, reference: str, sign_name: str = "") -> str:
    """The survey SMS body (without the 【签名】, which the provider adds): the short case
    reference, the scale to answer with, and the opt-out hint 回复TD退订.

    The longest wording that still fits one 70-character SMS, signature included, is chosen.
    """
    options = survey_options(t, scale)
    text = ""
    for key in WORDINGS:
        text = t(key, ref=reference, options=options)
        if sms_length(text, sign_name) <= SINGLE_SMS:
            return text
    return text
