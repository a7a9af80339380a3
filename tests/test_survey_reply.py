"""Every form of survey reply the parser must read, and the survey SMS text it answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversation.catalog import Catalog
from conversation.survey_reply import (
    OPT_OUT_WORDS,
    RATING_WORDS,
    OptOut,
    Rated,
    SurveyReply,
    Unclear,
    read_reply,
)
from conversation.survey_text import sms_length, sms_segments, survey_options, survey_sms

# (reply, scale, expected)
TABLE: list[tuple[str, int, SurveyReply]] = [
    # digits, full-width digits, Chinese numerals, with the punctuation people type
    ("1", 3, Rated(1)),
    ("2", 3, Rated(2)),
    ("3", 3, Rated(3)),
    ("１", 3, Rated(1)),
    ("３", 3, Rated(3)),
    ("1.", 3, Rated(1)),
    ("1、", 3, Rated(1)),
    ("１。", 3, Rated(1)),
    ("  2！ ", 3, Rated(2)),
    ("（1）", 3, Rated(1)),
    ("一", 3, Rated(1)),
    ("二。", 3, Rated(2)),
    ("三", 3, Rated(3)),
    ("四", 5, Rated(4)),
    ("五", 5, Rated(5)),
    ("5", 5, Rated(5)),
    ("５", 5, Rated(5)),
    # outside the scale, or not a single digit
    ("4", 3, Unclear()),
    ("四", 3, Unclear()),
    ("0", 3, Unclear()),
    ("6", 5, Unclear()),
    ("10", 3, Unclear()),
    ("12", 5, Unclear()),
    ("1.5", 3, Unclear()),
    ("1a", 3, Unclear()),
    # words: three levels
    ("满意", 3, Rated(1)),
    ("基本满意", 3, Rated(2)),
    ("不满意", 3, Rated(3)),
    ("非常满意", 3, Rated(1)),
    ("很满意", 3, Rated(1)),
    ("比较满意", 3, Rated(2)),
    ("不太满意", 3, Rated(3)),
    ("非常不满意", 3, Rated(3)),
    ("满意！", 3, Rated(1)),
    ("不满意。。。", 3, Rated(3)),
    # words: the five levels of 好差评
    ("非常满意", 5, Rated(1)),
    ("满意", 5, Rated(2)),
    ("基本满意", 5, Rated(3)),
    ("比较满意", 5, Rated(3)),
    ("不满意", 5, Rated(4)),
    ("非常不满意", 5, Rated(5)),
    ("很不满意", 5, Rated(5)),
    ("Very satisfied", 5, Rated(1)),
    ("satisfied", 3, Rated(1)),
    ("Not  satisfied", 3, Rated(3)),
    ("dissatisfied", 5, Rated(4)),
    ("Very dissatisfied!", 5, Rated(5)),
    # the digit with its label, as people copy the option; a contradiction is unclear
    ("1满意", 3, Rated(1)),
    ("3 不满意", 3, Rated(3)),
    ("三不满意", 3, Rated(3)),
    ("4不满意", 5, Rated(4)),
    ("1不满意", 3, Unclear()),
    ("2 不满意", 3, Unclear()),
    ("1 2", 3, Unclear()),
    ("满意 3", 3, Unclear()),
    # the short case reference before or after, in any case, in brackets
    ("1 7K3M", 3, Rated(1, "7K3M")),
    ("7K3M 1", 3, Rated(1, "7K3M")),
    ("7K3M满意", 3, Rated(1, "7K3M")),
    ("满意7k3m", 3, Rated(1, "7K3M")),
    ("【7K3M】1", 3, Rated(1, "7K3M")),
    ("[7k3m] 2", 3, Rated(2, "7K3M")),
    ("1（7K3M）", 3, Rated(1, "7K3M")),
    ("7K3M，不满意", 3, Rated(3, "7K3M")),
    ("1 KMNP", 3, Rated(1, "KMNP")),
    ("1 7k3o", 3, Rated(1, "7K30")),  # Crockford: O is read as 0
    ("XF20261122-7K3M9Q 2", 3, Rated(2, "3M9Q")),
    ("1 xf20261122 7k3m9q", 3, Rated(1, "3M9Q")),
    ("7K3M", 3, Unclear("7K3M")),
    ("7K3M 4", 3, Unclear("7K3M")),
    ("1 7U3M", 3, Rated(1, None, "7U3M")),  # U is not Crockford: a comment, not a reference
    # free text after the rating is the comment, as typed
    ("1 处理得很及时，谢谢", 3, Rated(1, None, "处理得很及时，谢谢")),
    ("1，处理得很及时", 3, Rated(1, None, "处理得很及时")),
    ("满意，非常感谢！", 3, Rated(1, None, "非常感谢！")),
    ("3 没人联系过我", 3, Rated(3, None, "没人联系过我")),
    ("不满意 7K3M 没人联系过我", 3, Rated(3, "7K3M", "没人联系过我")),
    ("1满意 办得快", 3, Rated(1, None, "办得快")),
    ("１ 很好 good", 3, Rated(1, None, "很好 good")),
    ("1 good", 3, Rated(1, None, "good")),
    ("1 （处理很快）", 3, Rated(1, None, "（处理很快）")),
    ("1。。。", 3, Rated(1)),
    ("1 👍", 3, Rated(1)),
    # opt-out words come before ratings
    ("TD", 3, OptOut("TD")),
    ("td", 3, OptOut("TD")),
    ("T", 3, OptOut("T")),
    ("t。", 3, OptOut("T")),
    ("T.D.", 3, OptOut("TD")),
    ("R", 3, OptOut("R")),
    ("N", 3, OptOut("N")),
    ("ＴＤ", 3, OptOut("TD")),
    ("退订", 3, OptOut("退订")),
    ("拒收", 5, OptOut("拒收")),
    ("退订！", 3, OptOut("退订")),
    ("TD 7K3M", 3, OptOut("TD")),
    ("STOP", 3, OptOut("STOP")),
    ("不要再发了，退订", 3, OptOut("退订")),
    ("1 退订", 3, OptOut("退订")),
    ("回复TD退订", 3, OptOut("退订")),
    # anything else is unclear: the survey asks again rather than guess
    ("", 3, Unclear()),
    ("   ", 3, Unclear()),
    ("一般", 3, Unclear()),
    ("好评", 3, Unclear()),
    ("我很满意", 3, Unclear()),
    ("谢谢", 3, Unclear()),
    ("good 1", 3, Unclear()),
    ("TDD", 3, Unclear()),
    ("2024年的事还没办", 3, Unclear("2024")),
]


@pytest.mark.parametrize(("text", "scale", "expected"), TABLE)
def test_every_reply_form(text: str, scale: int, expected: SurveyReply) -> None:
    assert read_reply(text, scale) == expected


PUNCTUATION = " \t\n\u3000.,!?。，、！？；：:;~～…—-()（）【】[]\"'“”《》"
noise = st.text(alphabet=PUNCTUATION, max_size=6)
digits = st.sampled_from(
    [(d, int(d)) for d in "12345"] + [(chr(0xFF10 + n), n) for n in range(1, 6)]
)


@given(digit=digits, before=noise, after=noise, scale=st.sampled_from([3, 5]))
def test_a_digit_in_any_punctuation_reads_the_same(
    digit: tuple[str, int], before: str, after: str, scale: int
) -> None:
    text, score = digit
    expected = Rated(score) if score <= scale else Unclear()
    assert read_reply(before + text + after, scale) == expected


@given(
    word=st.sampled_from(RATING_WORDS),
    before=noise,
    after=noise,
    upper=st.booleans(),
)
def test_a_rating_word_in_any_punctuation_reads_the_same(
    word: tuple[str, int], before: str, after: str, upper: bool
) -> None:
    text, grade = word
    text = text.upper() if upper else text
    assert read_reply(before + text + after, 5) == Rated(grade)
    assert read_reply(before + text + after, 3) == Rated({1: 1, 2: 1, 3: 2, 4: 3, 5: 3}[grade])


@given(word=st.sampled_from(sorted(OPT_OUT_WORDS)), before=noise, after=noise, lower=st.booleans())
def test_opt_out_words_in_any_case_and_punctuation(
    word: str, before: str, after: str, lower: bool
) -> None:
    text = word.lower() if lower else word
    assert read_reply(before + text + after, 3) == OptOut(word)


@given(text=st.text(max_size=200), scale=st.sampled_from([3, 5]))
def test_the_parser_never_raises(text: str, scale: int) -> None:
    reply = read_reply(text, scale)
    assert isinstance(reply, Rated | OptOut | Unclear)
    if isinstance(reply, Rated):
        assert 1 <= reply.score <= scale and len(reply.comment) <= 500


# -- the survey SMS text ---------------------------------------------------------------------------

CATALOG = Catalog()


@pytest.mark.parametrize("scale", [3, 5])
@pytest.mark.parametrize("sign", ["", "民意", "XX市信访局", "XX省XX市XX区人民政府信访局"])
def test_the_survey_sms_fits_one_segment_with_its_signature(scale: int, sign: str) -> None:
    text = survey_sms(CATALOG.for_language("zh"), scale, "7K3M", sign)
    assert "7K3M" in text and "回复TD退订" in text
    assert survey_options(CATALOG.for_language("zh"), scale) in text
    assert sms_length(text, sign) <= 70 and sms_segments(sms_length(text, sign)) == 1


def test_the_longest_wording_that_fits_is_chosen() -> None:
    zh = CATALOG.for_language("zh")
    assert survey_sms(zh, 3, "7K3M", "XX市信访局") == (
        "您反映的事项（尾号7K3M）已办结，请评价，回复：1满意 2基本满意 3不满意，可附意见。回复TD退订"
    )
    assert survey_sms(zh, 5, "7K3M", "XX市信访局").startswith("事项7K3M已办结")
    assert survey_sms(zh, 5, "7K3M", "XX省XX市XX区人民政府信访局").startswith("请评价事项7K3M")


def test_a_signature_too_long_for_one_sms_gets_the_shortest_wording() -> None:
    sign = "某" * 40
    text = survey_sms(CATALOG.for_language("zh"), 5, "7K3M", sign)
    assert text.startswith("请评价事项7K3M") and sms_segments(sms_length(text, sign)) == 2


def test_english_survey_sms() -> None:
    text = survey_sms(CATALOG.for_language("en"), 3, "7K3M")
    assert "7K3M" in text and "1 Satisfied, 2 Fairly satisfied, 3 Not satisfied" in text
    assert text.endswith("Reply TD to opt out")


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 1), (70, 1), (71, 2), (134, 2), (135, 3), (160, 3), (500, 8)]
)
def test_segments_are_counted_as_chinese_providers_bill(length: int, segments: int) -> None:
    assert sms_segments(length) == segments


def test_only_the_two_scales_exist() -> None:
    with pytest.raises(ValueError, match="3 or 5"):
        read_reply("1", 4)
