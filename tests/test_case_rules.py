"""The pure case rules: the transition table, open deadlines, stages in days or hours, warnings."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.due import next_deadline, open_deadlines
from conversation.cases.lifecycle import (
    IllegalTransition,
    ReviewWindowClosed,
    next_status,
)
from conversation.cases.stages import DeadlineRules, SlaStage
from conversation.office import OfficeConfigError, load_office

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAW = LegalDeadlines(SHANGHAI)
OFFICE = (Path(__file__).parent.parent / "conversation" / "office.toml").read_text("utf-8")


def office_file(tmp_path: Path, stages: str) -> Path:
    """The bundled office file with its `stages = [...]` replaced."""
    path = tmp_path / "office.toml"
    text = re.sub(r"stages = \[\n.*?\n\]\n", f"stages = [{stages}]\n", OFFICE, flags=re.S)
    path.write_text(text, "utf-8")
    return path


def at(day: str, clock: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00").replace(tzinfo=SHANGHAI)


def end(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59").replace(tzinfo=SHANGHAI)


# -- the table ---------------------------------------------------------------------------------


def test_rating_and_review_are_steps_of_the_table() -> None:
    assert next_status("closed", "rated") == "rated"
    with pytest.raises(IllegalTransition) as refused:
        next_status("replied", "rated")
    assert (refused.value.status, refused.value.event) == ("replied", "rated")
    assert "Possible next: closed" in str(refused.value)
    until = at("2026-12-31")
    for status in ("replied", "closed", "rated"):
        assert (
            next_status(status, "review_requested", review_until=until, now=until)
            == "review_requested"
        )
    with pytest.raises(ReviewWindowClosed) as late:
        next_status("rated", "review_requested", review_until=until, now=until + timedelta(1))
    assert late.value.until == until and late.value.status == "rated"
    with pytest.raises(IllegalTransition) as no_window:
        next_status("closed", "review_requested", review_until=None, now=until)
    assert not isinstance(no_window.value, ReviewWindowClosed)
    with pytest.raises(IllegalTransition):
        next_status("assigned", "review_requested", review_until=until, now=until)


# -- stages in days, the same day, or hours ---------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "start", "expected"),
    [
        (SlaStage("当日受理", days=0), at("2026-11-23", "16:00"), end("2026-11-23")),  # Monday
        (SlaStage("当日受理", days=0), at("2026-11-28"), end("2026-11-30")),  # Saturday → Monday
        (SlaStage("当日", days=0, working_days=False), at("2026-11-28"), end("2026-11-28")),
        (SlaStage("联系", hours=4), at("2026-11-23", "22:30"), at("2026-11-24", "02:30")),
        (SlaStage("联系", hours=4), at("2026-11-28"), at("2026-11-28", "14:00")),  # on the clock
    ],
)
def test_same_day_and_hour_stages(stage: SlaStage, start: datetime, expected: datetime) -> None:
    assert LAW.stage_due(stage, start) == expected


def test_office_file_takes_hours_and_the_same_day(tmp_path: Path) -> None:
    path = office_file(
        tmp_path,
        '{ name = "当日受理", days = 0, from = "submitted" },'
        '{ name = "四小时联系", hours = 4, from = "accepted" }',
    )
    rules = load_office(path).deadlines
    assert rules.stages == (
        SlaStage("当日受理", days=0, anchor="submitted"),
        SlaStage("四小时联系", hours=4, anchor="accepted"),
    )


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ('{ name = "x", days = 1, hours = 4 }', "deadlines.stages[0] needs either days or hours"),
        ('{ name = "x" }', "deadlines.stages[0] needs either days or hours"),
        ('{ name = "x", hours = 0 }', "deadlines.stages[0].hours must be a whole number"),
        ('{ name = "x", hours = 73 }', "from 1 to 72"),
        ('{ name = "x", hours = 4, working_days = true }', "working_days applies to days only"),
        ('{ name = "x", days = 61 }', "from 0 (the same day) to 60"),
        ('{ name = "x", days = true }', "deadlines.stages[0].days must be a whole number"),
        ('{ name = "x", days = 1, from = "replied" }', "deadlines.stages[0].from = 'replied'"),
        ('{ name = "x", days = 1, from = "whenever" }', "cannot start a stage"),
        ('{ name = "x", days = 1 }, { name = "x", hours = 2 }', "two stages share one name"),
    ],
)
def test_office_file_refuses_stages_that_cannot_work(
    tmp_path: Path, stage: str, message: str
) -> None:
    with pytest.raises(OfficeConfigError, match=re.escape(message)):
        load_office(office_file(tmp_path, stage))


# -- warnings in proportion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "lead"),
    [
        (timedelta(hours=4), timedelta(hours=1)),  # a 4-hour stage warns in its last hour
        (timedelta(days=1), timedelta(hours=6)),
        (timedelta(days=8), timedelta(hours=48)),
        (timedelta(days=60), timedelta(hours=48)),  # the law's limits keep the configured lead
        (None, timedelta(hours=48)),  # a stage stored without its start
    ],
)
def test_the_warning_lead_is_at_most_a_quarter_of_the_limit(
    span: timedelta | None, lead: timedelta
) -> None:
    assert LAW.warning_lead(span) == lead
    assert LegalDeadlines(SHANGHAI, DeadlineRules(warn_before_hours=2)).warning_lead(span) <= (
        timedelta(hours=2)
    )


# -- which deadlines are open ----------------------------------------------------------------------


def test_open_deadlines_by_status_and_kind() -> None:
    stages = LegalDeadlines(SHANGHAI, DeadlineRules(stages=(SlaStage("联系", hours=4),)))
    started = stages.stages_from("assigned", at("2026-11-23"))
    times = {
        "accept_by": end("2026-12-08"),
        "finish_by": end("2027-01-22"),
        "review_by": None,
        "stages": started,
    }
    assigned = open_deadlines(kind="petition", status="assigned", **times)
    assert [(d.kind, d.span) for d in assigned] == [
        ("finish", timedelta(days=60)),
        ("stage:联系", timedelta(hours=4)),
    ]
    assert next_deadline(assigned) == assigned[0]
    submitted = open_deadlines(kind="petition", status="submitted", **times)
    assert [d.kind for d in submitted] == ["accept", "stage:联系"]
    replied = open_deadlines(
        kind="petition", status="replied", **{**times, "review_by": end("2027-01-01")}
    )
    assert [(d.kind, d.office) for d in replied] == [("review", False)]  # stages end at the reply
    assert open_deadlines(kind="suggestion", status="submitted", **times) == []
    assert open_deadlines(kind="suggestion", status="assigned", **times) == []
