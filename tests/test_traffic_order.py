"""The traffic benchmark's orders of sending: what its figures rest on (benchmarks/wechat_traffic.py).

Each citizen's messages must go in the walk's order, one at a time (`wave` pushes apart, more
than the connections in flight), or a turn would find its conversation at another step and the
cases filed would no longer match the submits sent."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from wechat_traffic import WALK, walked_mixed, walked_phased


def gaps(order: list[tuple[int, int]]) -> Counter[int]:
    """Pushes between a citizen's consecutive messages; asserts each walks its steps in order."""
    last: dict[int, tuple[int, int]] = {}
    between: Counter[int] = Counter()
    for position, (step, citizen) in enumerate(order):
        if citizen in last:
            before, previous = last[citizen]
            assert step == previous + 1, f"citizen {citizen}: step {step} after {previous}"
            between[position - before] += 1
        else:
            assert step == 0, f"citizen {citizen} starts at step {step}"
        last[citizen] = (position, step)
    return between


@pytest.mark.parametrize("walked", [walked_phased, walked_mixed])
def test_each_citizen_walks_in_order_a_wave_apart(walked):
    assert set(gaps(list(walked(1_000, 100)))) == {100}


def test_phased_sends_a_wave_at_one_step():
    order = list(walked_phased(1_000, 100))
    assert len(order) == 1_000 * len(WALK)
    assert {step for step, _ in order[700:800]} == {7}  # a hundred submits in a row


def test_mixed_holds_every_step_in_every_wave():
    order = list(walked_mixed(1_000, 100))
    # After the first walk's length of waves (the lanes setting off a step apart).
    for first in range(len(WALK) * 100, len(order), 100):
        steps = Counter(step for step, _ in order[first : first + 100])
        assert set(steps.values()) == {10}, f"pushes {first}…: {sorted(steps.items())}"
    assert {citizen for _, citizen in order} >= set(range(1_000))
