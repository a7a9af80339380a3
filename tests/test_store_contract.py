"""One contract for every conversation store: in memory, SQLite, PostgreSQL, PostgreSQL + Redis.

Driven through the ports as the Engine drives them (lock, recall, turn: load, lookups, apply,
save, remember, commit). The in-memory store passes only what the real ones pass, which is
what lets the flow tests run on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

import storage.cases
import storage.memory_cases
from conversation.codes import CASE_CODE_RE
from conversation.commands import (
    AddRatingComment,
    Command,
    RecordRating,
    RequestHandoff,
    RequestReview,
    Results,
    SubmitCase,
    Unsubscribe,
)
from conversation.messages import Choice, Inbound, Reply
from conversation.ports import CaseView, Conflict, ConversationStore
from conversation.state import ConversationState
from storage.models import utcnow

from .store_backends import STORES, TZ, Backend, open_backend


@pytest.fixture(params=STORES)
async def backend(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Backend]:
    async with open_backend(request, request.param, tmp_path) as opened:
        yield opened


def said(sender: str = "c1", channel: str = "webchat", message_id: str = "m1") -> Inbound:
    return Inbound(channel=channel, sender=sender, text="…", message_id=message_id)


def filing(origin: str = "webchat:c1:form-1", **fields: object) -> SubmitCase:
    due = utcnow() + timedelta(days=15)
    return SubmitCase(
        origin=origin,
        kind="petition",
        description="小区门口的路灯坏了一个多月",
        category="city",
        acceptance_due=due,
        **fields,  # type: ignore[arg-type]
    )


async def applied(store: ConversationStore, inbound: Inbound, *commands: Command) -> Results:
    async with store.turn() as turn:
        results = await turn.apply(commands, inbound)
        await turn.commit()
    return results


async def case_of(store: ConversationStore, inbound: Inbound, code: str) -> CaseView | None:
    async with store.turn() as turn:
        return await turn.lookups.case_of(inbound.channel, inbound.sender, code)


async def recalled(store: ConversationStore, key: str, dedupe_key: str) -> list[Reply] | None:
    """As the Engine asks: under the lock (Redis answers there), then inside the turn."""
    async with store.lock(key, dedupe_key):
        seen = await store.recall(dedupe_key)
        if seen is not None:
            return seen
        async with store.turn() as turn:
            await turn.load_state(key)
            return await turn.recall(dedupe_key)


async def loaded(store: ConversationStore, key: str) -> ConversationState | None:
    async with store.lock(key), store.turn() as turn:
        return await turn.load_state(key)


async def saved(
    store: ConversationStore, key: str, state: ConversationState, answered: str = ""
) -> None:
    """One turn writing the state, and remembering `answered` as the reply to message m1."""
    async with store.lock(key), store.turn() as turn:
        await turn.load_state(key)
        await turn.save_state(key, state)
        if answered:
            await turn.remember(f"{key}:m1", [Reply(answered)])
        await turn.commit()


# -- conversation state and re-delivery memory ------------------------------------------------


async def test_state_round_trips_as_json(backend: Backend) -> None:
    store = backend.store
    assert await loaded(store, "webchat:a") is None
    state = ConversationState(
        flow="filing",
        step="name",
        data={"description": "路灯坏了", "photos": ("m1", "m2"), "n": 2},
        draft={"flow": "suggestion", "step": "text", "data": {}},
        language="en",
        source="town-7",
        risk_alerted=True,
    )
    await saved(store, "webchat:a", state)
    back = await loaded(store, "webchat:a")
    assert back is not None
    assert (back.flow, back.step, back.draft, back.language, back.source, back.risk_alerted) == (
        "filing",
        "name",
        {"flow": "suggestion", "step": "text", "data": {}},
        "en",
        "town-7",
        True,
    )
    # Stored as JSON everywhere: a tuple comes back a list.
    assert back.data == {"description": "路灯坏了", "photos": ["m1", "m2"], "n": 2}
    assert back.updated_at == state.updated_at


async def test_an_uncommitted_turn_leaves_nothing_behind(backend: Backend) -> None:
    store, inbound = backend.store, said()
    async with store.lock("webchat:c1"), store.turn() as turn:
        await turn.load_state("webchat:c1")
        await turn.apply([filing()], inbound)
        await turn.save_state("webchat:c1", ConversationState(flow="faq"))
        await turn.remember("webchat:c1:m1", [Reply("hi")])
    assert await loaded(store, "webchat:c1") is None
    assert await recalled(store, "webchat:c1", "webchat:c1:m1") is None
    async with store.turn() as turn:
        assert await turn.lookups.cases_of("webchat", "c1") == []
    assert await backend.sent() == []


async def test_remembered_replies_come_back_for_that_message_only(backend: Backend) -> None:
    store = backend.store
    async with store.lock("webchat:c"), store.turn() as turn:
        await turn.load_state("webchat:c")
        await turn.save_state("webchat:c", ConversationState())
        await turn.remember("webchat:c:m1", [Reply("请选择", (Choice("1", "是"),)), Reply("好")])
        await turn.commit()
    again = await recalled(store, "webchat:c", "webchat:c:m1")
    assert again == [Reply("请选择", (Choice("1", "是"),)), Reply("好")]
    assert await recalled(store, "webchat:c", "webchat:c:m2") is None
    assert await recalled(store, "webchat:other", "webchat:other:m1") is None


async def test_state_and_replies_expire_and_the_conversation_starts_again(
    backend: Backend,
) -> None:
    store = backend.short_lived(timedelta(seconds=1))
    await saved(store, "webchat:e", ConversationState(flow="faq"), answered="hi")
    assert await recalled(store, "webchat:e", "webchat:e:m1") == [Reply("hi")]
    await backend.pause(1.2)
    assert await loaded(store, "webchat:e") is None
    assert await recalled(store, "webchat:e", "webchat:e:m1") is None
    # An expired conversation is written again without a conflict, the message answered anew.
    await saved(store, "webchat:e", ConversationState(flow="status"), answered="yo")
    state = await loaded(store, "webchat:e")
    assert state is not None and state.flow == "status"
    assert await recalled(store, "webchat:e", "webchat:e:m1") == [Reply("yo")]


# -- one conversation, many turns ------------------------------------------------------------------


async def counted_turn(store: ConversationStore, key: str, name: str) -> None:
    """One turn that adds its name to the state, yielding between reading and writing."""
    async with store.turn() as turn:
        state = await turn.load_state(key) or ConversationState()
        await asyncio.sleep(0)  # let the other turn run here, if the store allows it
        state.data["names"] = [*state.data.get("names", []), name]
        await turn.save_state(key, state)
        await turn.commit()


async def test_turns_under_the_lock_run_one_after_another(backend: Backend) -> None:
    store = backend.store

    async def locked(name: str) -> None:
        async with store.lock("webchat:busy"):
            await counted_turn(store, "webchat:busy", name)  # no retry: nothing may conflict

    names = [f"t{i}" for i in range(6)]
    await asyncio.gather(*(locked(name) for name in names))
    state = await loaded(store, "webchat:busy")
    assert state is not None and sorted(state.data["names"]) == names


async def test_the_lock_holds_one_conversation_not_another(backend: Backend) -> None:
    store, order = backend.store, []

    async def hold(key: str, name: str, delay: float) -> None:
        async with store.lock(key):
            order.append(f"{name}+")
            await asyncio.sleep(delay)
            order.append(f"{name}-")

    await asyncio.gather(hold("webchat:k1", "a", 0.05), hold("webchat:k1", "b", 0.0))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    order.clear()
    await asyncio.gather(hold("webchat:k2", "a", 0.05), hold("webchat:k3", "b", 0.05))
    assert set(order[:2]) == {"a+", "b+"}


# The Redis store keeps no version: its guard is the lock, which every process shares (above).
@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"], indirect=True)
async def test_racing_turns_without_the_lock_lose_no_write(backend: Backend) -> None:
    """Two processes on one conversation: the stale write is refused (Conflict) and run again,
    or the second turn waits for the first; never does the later commit erase the earlier."""
    store = backend.store

    async def retried(name: str) -> None:
        for _ in range(3):
            try:
                return await counted_turn(store, "webchat:race", name)
            except Conflict:
                pass  # as the Engine does: run the turn again
        raise AssertionError("still conflicting after three attempts")

    await asyncio.gather(retried("a"), retried("b"))
    state = await loaded(store, "webchat:race")
    assert state is not None and sorted(state.data["names"]) == ["a", "b"]


# -- the turn's commands on cases ------------------------------------------------------------------


async def test_a_submit_is_idempotent_by_its_origin(backend: Backend) -> None:
    store, inbound = backend.store, said()
    first = await applied(store, inbound, filing())
    assert CASE_CODE_RE.fullmatch(first.case_code)
    assert first.case_created_at is not None
    assert first.case_code[2:10] == f"{first.case_created_at.astimezone(TZ):%Y%m%d}"
    assert first.values["acceptance_due"] is not None
    again = await applied(store, inbound, filing())
    assert (again.case_code, again.case_created_at) == (first.case_code, first.case_created_at)
    other = await applied(store, inbound, filing(origin="webchat:c1:form-2"))
    assert other.case_code != first.case_code
    assert [(t, code) for t, code, _ in await backend.sent()] == [
        ("case.submitted", first.case_code),
        ("case.submitted", other.case_code),
    ]


async def test_racing_submits_of_one_form_file_one_case(backend: Backend) -> None:
    """A re-delivery racing the first delivery (without the lock, as two processes may)."""
    store = backend.store

    async def submit() -> str:
        for _ in range(3):
            try:
                async with store.turn() as turn:
                    results = await turn.apply([filing()], said())
                    await asyncio.sleep(0)  # let the other submit run here, if the store allows it
                    await turn.commit()
                return results.case_code
            except Conflict:
                pass  # as the Engine does: run the turn again
        raise AssertionError("still conflicting after three attempts")

    first, second = await asyncio.gather(submit(), submit())
    assert first == second
    assert [(t, code) for t, code, _ in await backend.sent()] == [("case.submitted", first)]


async def test_a_repeated_case_code_is_refused_and_the_turn_run_again_gets_another(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes are random, not asked for beforehand: a repeat is a Conflict, never two cases."""
    store = backend.store
    first = (await applied(store, said(), filing())).case_code
    codes = iter([first, "XF20261122-ZZZZZZ"])
    for module in (storage.cases, storage.memory_cases):
        monkeypatch.setattr(module, "new_case_code", lambda day: next(codes))
    again = filing(origin="webchat:c2:form-1")
    with pytest.raises(Conflict):
        await applied(store, said("c2"), again)
    assert (await applied(store, said("c2"), again)).case_code == "XF20261122-ZZZZZZ"
    view = await case_of(store, said(), first)
    assert view is not None and view.category == "city"  # the first case is untouched
    assert [(t, code) for t, code, _ in await backend.sent()] == [
        ("case.submitted", first),
        ("case.submitted", "XF20261122-ZZZZZZ"),
    ]


async def test_lookups_answer_only_the_identity_that_filed(backend: Backend) -> None:
    store, owner = backend.store, said()
    command = filing()
    older = (await applied(store, owner, filing(origin="webchat:c1:form-0"))).case_code
    code = (await applied(store, owner, command)).case_code
    async with store.turn() as turn:
        mine = await turn.lookups.cases_of("webchat", "c1")
        assert [c.code for c in mine] == [code, older]  # newest first
        assert [c.code for c in await turn.lookups.cases_of("webchat", "c1", limit=1)] == [code]
        assert await turn.lookups.cases_of("webchat", "c2") == []
        assert await turn.lookups.cases_of("telegram", "c1") == []
        assert await turn.lookups.ratable_cases("webchat", "c1") == []
    view = await case_of(store, owner, code)
    assert view is not None
    assert (view.code, view.kind, view.category, view.status) == (
        code,
        "petition",
        "city",
        "submitted",
    )
    assert view.next_deadline is not None and view.next_deadline.kind == "accept"
    assert view.next_deadline.due_at == command.acceptance_due
    assert [step.type for step in view.history] == ["submitted"]
    assert await case_of(store, said("c2"), code) is None
    assert await case_of(store, said(channel="telegram"), code) is None
    assert await case_of(store, owner, code[:-6] + "ZZZZZZ") is None


async def test_a_rating_is_taken_only_from_a_closed_case_and_only_once(backend: Backend) -> None:
    store, owner = backend.store, said()
    code = (await applied(store, owner, filing())).case_code
    rating = RecordRating(code, 3, "不满意", 3, unhappy=True)
    assert (await applied(store, owner, rating)).values == {"rated": False}  # not closed yet
    await backend.move_case(code, "closed")
    async with store.turn() as turn:
        assert [c.code for c in await turn.lookups.ratable_cases("webchat", "c1")] == [code]
    assert (await applied(store, said("c2"), rating)).values == {"rated": False}  # not theirs
    assert (await applied(store, owner, rating)).values == {"rated": True}
    await applied(store, owner, AddRatingComment(code, "一直没人来修"))
    assert (await applied(store, owner, rating)).values == {"rated": False}  # once
    view = await case_of(store, owner, code)
    assert view is not None and view.status == "rated"
    assert [step.type for step in view.history] == ["submitted", "rated"]
    sent = await backend.sent()
    assert [t for t, _, _ in sent] == ["case.submitted", "case.rated", "case.updated"]
    assert sent[1][2]["score"] == 3 and sent[1][2]["label"] == "不满意"
    assert sent[2][2]["rating_comment"] == "一直没人来修"


async def test_a_review_is_taken_only_within_its_window(backend: Backend) -> None:
    store, owner = backend.store, said()
    now = utcnow()
    open_window, past_window, not_replied = [
        (await applied(store, owner, filing(origin=f"webchat:c1:form-{i}"))).case_code
        for i in range(3)
    ]
    await backend.move_case(open_window, "replied", review_until=now + timedelta(days=1))
    await backend.move_case(past_window, "replied", review_until=now - timedelta(minutes=1))
    decide_by = now + timedelta(days=30)

    async def review(code: str, inbound: Inbound = owner) -> str:
        results = await applied(store, inbound, RequestReview(code, decide_by))
        return str(results.values["review"])

    assert await review(open_window, said("c2")) == "not_possible"  # not theirs
    assert await review(not_replied) == "not_possible"
    assert await review(past_window) == "too_late"
    assert await review(open_window) == "requested"
    view = await case_of(store, owner, open_window)
    assert view is not None and view.status == "review_requested"
    assert view.next_deadline is not None
    assert (view.next_deadline.kind, view.next_deadline.due_at) == ("review_decision", decide_by)
    late = await case_of(store, owner, past_window)
    assert late is not None and late.status == "replied"
    assert [(t, code) for t, code, _ in await backend.sent()][-1] == (
        "case.review_requested",
        open_window,
    )


async def test_a_handoff_reaches_the_back_office_with_the_citizens_latest_case(
    backend: Backend,
) -> None:
    store, owner = backend.store, said()
    await applied(store, owner, RequestHandoff(reason="citizen", summary="想找人说"))
    code = (await applied(store, owner, filing())).case_code
    await applied(store, owner, RequestHandoff(reason="risk", risk_words=("跳楼",)))
    theirs = (await applied(store, said("c2"), filing(origin="webchat:c2:form-1"))).case_code
    await applied(store, owner, RequestHandoff(reason="citizen", case_code=theirs))
    handoffs = [(case, data) for t, case, data in await backend.sent() if t == "handoff.requested"]
    assert [case for case, _ in handoffs] == ["", code, ""]  # never someone else's case
    # A web chat's sender (its session cookie's keyed hash) never leaves (issue 13).
    assert handoffs[0][1] == {
        "channel": "webchat",
        "reason": "citizen",
        "summary": "想找人说",
        "risk_words": [],
    }
    assert handoffs[1][1]["reason"] == "risk" and handoffs[1][1]["risk_words"] == ["跳楼"]


async def test_leaving_the_channel_is_recorded(backend: Backend) -> None:
    assert not await backend.unsubscribed("wechat", "openid-1")
    await applied(backend.store, said("openid-1", channel="wechat"), Unsubscribe())
    assert await backend.unsubscribed("wechat", "openid-1")
    assert not await backend.unsubscribed("wechat", "openid-2")
