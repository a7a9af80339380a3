"""Every move of the case lifecycle, legal or not, as the law gives it, through the HTTP API.

The matrix below is written from 《信访工作条例》(2022) and ARCHITECTURE.md ("Case lifecycle and
the law it follows"), not read from the code: a wrong table in the code fails here instead of
verifying itself. Cases are filed on the web chat and moved by `POST /api/v1/cases/{code}/events`
(rated and review_requested by the citizen's own answers in the chat), so this test does not care
where the code keeps its table.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app.settings import Settings
from bot.app.web import create_app

from .web_citizen import WebCitizen, get_case, post_event

# Rows: the case's status. Columns: the event the back office reports. A cell is the status the
# event leads to, "=" for allowed without a change of status, "-" for refused (HTTP 409).
LAW = """
                  accepted  redirected  assigned  returned  replied  closed  extended  note
submitted         accepted  redirected  -         -         -        -       -         =
accepted          -         -           assigned  -         replied  -       =         =
redirected        -         -           -         -         -        -       -         =
assigned          -         -           -         returned  replied  -       =         =
returned          -         -           assigned  -         -        -       =         =
replied           -         -           -         -         -        closed  -         =
closed            -         -           -         -         -        -       -         =
rated             -         -           -         -         -        -       -         =
review_requested  accepted  -           assigned  -         replied  -       =         =
"""
# Why, row by row:
# submitted: decide on acceptance (受理) or send to the legal route (不予受理 / 诉访分离), Art. 22,
#   23, 28, 31; nothing is handled, extended or closed before it is accepted.
# accepted: hand to a department (交办, Art. 22) or answer it directly (Art. 32); the 60 days
#   run from acceptance and may be extended once (Art. 34).
# redirected: ends here for this office; only notes.
# assigned: the department answers, or returns it as not its remit (Art. 23: object in 5 days).
# returned: the office assigns again; a returned matter has no answer to give yet.
# replied: the answer is given; the case is closed (办结). A review is the citizen's (Art. 35).
# closed, rated: only the citizen moves them on (a rating, a review request).
# review_requested: the review is decided afresh: accepted, assigned, or answered (Art. 35-36).

BODIES: dict[str, dict[str, Any]] = {
    "accepted": {"type": "accepted", "staff": "王芳"},
    "redirected": {"type": "redirected", "reason": "属于劳动争议", "department": "区劳动仲裁委"},
    "assigned": {"type": "assigned", "department": "区城管局"},
    "returned": {"type": "returned", "reason": "不属于本单位职责"},
    "replied": {"type": "replied", "note": "路灯已修复。"},
    "closed": {"type": "closed"},
    "extended": {"type": "extended", "reason": "需要多部门会商", "days": 20},
    "note": {"type": "note", "note": "已电话联系群众"},
}
# How a case gets to each status: back-office events, then what the citizen says in the chat.
CLOSED = ["accepted", "assigned", "replied", "closed"]
PATHS: dict[str, tuple[list[str], list[str]]] = {
    "submitted": ([], []),
    "accepted": (["accepted"], []),
    "redirected": (["redirected"], []),
    "assigned": (["accepted", "assigned"], []),
    "returned": (["accepted", "assigned", "returned"], []),
    "replied": (["accepted", "assigned", "replied"], []),
    "closed": (CLOSED, []),
    "rated": (CLOSED, ["3", "1"]),  # 评价, 满意
    "review_requested": (CLOSED, ["3", "3", "跳过", "1"]),  # 评价, 不满意, no reason, 申请复查
}


def read_law(table: str) -> dict[str, dict[str, str | None]]:
    """status → event → the status it leads to, or None when refused."""
    header, *rows = [line.split() for line in table.strip().splitlines()]
    law: dict[str, dict[str, str | None]] = {}
    for status, *cells in rows:
        assert len(cells) == len(header), status
        law[status] = {
            event: None if cell == "-" else status if cell == "=" else cell
            for event, cell in zip(header, cells, strict=True)
        }
    return law


MOVES = read_law(LAW)


def test_the_matrix_covers_every_status_and_event() -> None:
    assert set(MOVES) == set(PATHS) and all(set(row) == set(BODIES) for row in MOVES.values())


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings, workers=False))


async def case_in(client: TestClient, status: str) -> str:
    """A new case, filed by its own citizen and walked to `status`."""
    citizen = WebCitizen(client)
    code = await citizen.file_a_matter()
    events, words = PATHS[status]
    for event in events:
        answer, body = await post_event(client, code, BODIES[event])
        assert answer == 200, (status, event, body)
    for text in words:
        await citizen.say(text)
    assert (await get_case(client, code))["status"] == status
    return code


@pytest.mark.parametrize("status", list(MOVES))
async def test_the_law_decides_every_move(client: TestClient, status: str) -> None:
    row = MOVES[status]
    # Refusals change nothing, so one case takes them all, one after another.
    code = await case_in(client, status)
    for event in (e for e, following in row.items() if following is None):
        before = await get_case(client, code)
        answer, body = await post_event(client, code, BODIES[event])
        assert answer == 409, (status, event, body)
        assert body["error"] == "illegal_transition" and body["status"] == status
        assert await get_case(client, code) == before, (status, event)
    # Each allowed move gets a case of its own, since it changes the case.
    for event in (e for e, following in row.items() if following is not None):
        code = await case_in(client, status)
        answer, body = await post_event(client, code, BODIES[event])
        assert answer == 200, (status, event, body)
        assert body["status"] == row[event], (status, event)
        assert body["events"][-1]["type"] == event
