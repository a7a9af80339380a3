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
from conversation.cases.proof import ProofAnswer, read_secret
from conversation.cases.repeats import RepeatRules
from conversation.codes import CASE_CODE_RE
from conversation.commands import (
    AddRatingComment,
    Command,
    ProveCase,
    RecordRating,
    RequestHandoff,
    RequestReview,
    Results,
    SendProofCode,
    SubmitCase,
    Supplement,
    Unsubscribe,
    Urge,
)
from conversation.messages import Choice, Inbound, Media, Reply
from conversation.ports import CaseView, Conflict, ConversationStore, Forgotten, SimilarCase
from conversation.similarity import similarity
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


async def test_replies_go_after_the_redelivery_window_and_the_message_stays_handled(
    backend: Backend,
) -> None:
    store = backend.short_lived(timedelta(hours=1), redelivery=timedelta(seconds=1))
    await saved(store, "webchat:f", ConversationState(flow="faq"), answered="hi")
    assert await recalled(store, "webchat:f", "webchat:f:m1") == [Reply("hi")]
    await backend.pause(1.2)
    # Still known as handled (never handled twice), but what it was answered is gone.
    again = await recalled(store, "webchat:f", "webchat:f:m1")
    assert isinstance(again, Forgotten) and again == []
    assert await recalled(store, "webchat:f", "webchat:f:m2") is None
    state = await loaded(store, "webchat:f")
    assert state is not None and state.flow == "faq"
    # A later message of the conversation is remembered in full again.
    async with store.lock("webchat:f"), store.turn() as turn:
        await turn.load_state("webchat:f")
        await turn.save_state("webchat:f", ConversationState(flow="status"))
        await turn.remember("webchat:f:m2", [Reply("yo")])
        await turn.commit()
    assert await recalled(store, "webchat:f", "webchat:f:m2") == [Reply("yo")]
    assert isinstance(await recalled(store, "webchat:f", "webchat:f:m1"), Forgotten)


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


async def test_a_similar_open_matter_is_the_askers_own_of_its_kind_and_category(
    backend: Backend,
) -> None:
    store, owner = backend.store, said()
    code = (await applied(store, owner, filing())).case_code
    rules = RepeatRules()

    async def similar(
        sender: str = "c1", category: str = "city", text: str = "路灯坏了一个多月，小区门口很黑"
    ) -> SimilarCase | None:
        async with store.turn() as turn:
            return await turn.lookups.similar_open_case(
                "webchat", sender, "petition", category, text, rules, similarity
            )

    found = await similar()
    assert found is not None and found.code == code
    assert found.description == "小区门口的路灯坏了一个多月" and found.score >= rules.similar_at
    assert await similar(sender="c2") is None  # another person's is never theirs to see
    assert await similar(category="traffic") is None
    assert await similar(text="楼下烧烤店油烟很大，窗户都不敢开") is None
    await backend.move_case(code, "closed")
    assert await similar() is None  # finished: nothing left to add to


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


# -- proof of identity, anonymous filing (issue 17) ------------------------------------------------

PHONE = "+8613800138000"


def proof(results: Results) -> ProofAnswer:
    answer = results.values["proof"]
    assert isinstance(answer, ProofAnswer)
    return answer


async def test_a_texted_code_opens_the_case_and_the_citizens_others_for_good(
    backend: Backend,
) -> None:
    store, owner, stranger = backend.store, said(), said("relative", channel="telegram")
    code = (await applied(store, owner, filing(name="张三", phone=PHONE))).case_code
    kiosk = said("kiosk-7")  # the same person's other case, filed elsewhere with the same mobile
    other = (await applied(store, kiosk, filing(origin="k:1", name="张三", phone=PHONE))).case_code
    assert await case_of(store, stranger, code) is None

    sent = proof(await applied(store, stranger, SendProofCode(code)))
    assert (sent.outcome, sent.tail) == ("sent", "8000")
    texted = await backend.texted_code()
    assert len(texted) == 6 and texted.isdigit()
    wrong = "000000" if texted != "000000" else "111111"
    answer = proof(await applied(store, stranger, ProveCase(code, "sms", wrong)))
    assert (answer.outcome, answer.tries_left) == ("wrong", 4)
    assert await case_of(store, stranger, code) is None
    passed = proof(await applied(store, stranger, ProveCase(code, "sms", texted)))
    assert passed.outcome == "passed"
    assert isinstance(passed.case, CaseView) and passed.case.code == code
    # Not asked again, and the citizen's other case opens too: holding the phone proves them.
    assert await case_of(store, stranger, code) is not None
    assert await case_of(store, stranger, other) is not None
    # A code is good once.
    again = proof(await applied(store, stranger, ProveCase(code, "sms", texted)))
    assert again.outcome == "no_code"
    types = [t for t, _ in await backend.timeline(code)]
    assert types[-4:] == ["proof.code_sent", "proof.failed", "proof.passed", "proof.failed"]
    [(_, sent_data)] = [(t, d) for t, d in await backend.timeline(code) if t == "proof.code_sent"]
    assert sent_data["channel"] == "telegram" and sent_data["tail"] == "8000"
    assert "relative" not in str(sent_data)  # the asker's chat id is masked


async def test_an_anonymous_case_opens_only_with_its_query_code(backend: Backend) -> None:
    store, owner, stranger = backend.store, said(), said("elsewhere", channel="sms")
    filed = await applied(store, owner, filing(anonymous=True))
    code, query = filed.case_code, str(filed.values["query_code"])
    assert len(query) == 8 and read_secret(query) == ("query", query)
    view = await case_of(store, owner, code)  # the chat that filed it needs no proof
    assert view is not None
    unknown = code[:-6] + ("ZZZZZZ" if not code.endswith("ZZZZZZ") else "YYYYYY")
    # Unknown and anonymous codes answer alike: no mobile to text, a wrong 查询码.
    for asked in (code, unknown):
        assert proof(await applied(store, stranger, SendProofCode(asked))).outcome == "no_phone"
        wrong = proof(await applied(store, stranger, ProveCase(asked, "query", "ABCDEFGH")))
        assert wrong.outcome == "wrong"
    # Another case's 查询码 opens nothing here.
    second = await applied(store, owner, filing(origin="webchat:c1:form-2", anonymous=True))
    crossed = ProveCase(code, "query", str(second.values["query_code"]))
    assert proof(await applied(store, stranger, crossed)).outcome == "wrong"
    passed = proof(await applied(store, stranger, ProveCase(code, "query", query)))
    assert passed.outcome == "passed"
    assert await case_of(store, stranger, code) is not None
    assert await case_of(store, stranger, second.case_code) is None  # only that case
    types = [t for t, _ in await backend.timeline(code)]
    assert types == ["submitted", "proof.failed", "proof.failed", "proof.failed", "proof.passed"]


async def test_texts_and_wrong_answers_are_limited_and_say_when_to_try_again(
    backend: Backend,
) -> None:
    store, owner = backend.store, said()
    code = (await applied(store, owner, filing(name="张三", phone=PHONE))).case_code
    before = utcnow()
    asker = said("asker-1", channel="telegram")
    for _ in range(3):
        assert proof(await applied(store, asker, SendProofCode(code))).outcome == "sent"
    limited = proof(await applied(store, asker, SendProofCode(code)))
    assert limited.outcome == "throttled" and limited.retry_at is not None
    assert before + timedelta(minutes=59) < limited.retry_at <= utcnow() + timedelta(hours=1)
    # Per case and per mobile too: another asker cannot text the same phone either.
    other = proof(await applied(store, said("asker-2", channel="wechat"), SendProofCode(code)))
    assert other.outcome == "throttled"
    # Only the newest code works, and it takes five wrong tries at most.
    texted = await backend.texted_code()
    wrong = "000000" if texted != "000000" else "111111"
    outcomes = [
        proof(await applied(store, asker, ProveCase(code, "sms", wrong))).outcome for _ in range(5)
    ]
    assert outcomes == ["wrong"] * 4 + ["expired"]
    assert proof(await applied(store, asker, ProveCase(code, "sms", texted))).outcome == "no_code"
    # Ten failures an hour per asker and per case, then even the right answer waits.
    fresh = (await applied(store, owner, filing(origin="webchat:c1:f2", anonymous=True))).case_code
    guesser = said("guesser", channel="sms")
    for i in range(10):
        tried = ProveCase(fresh, "query", f"AAAAAA{i:02d}")
        assert proof(await applied(store, guesser, tried)).outcome == "wrong"
    stopped = proof(await applied(store, guesser, ProveCase(fresh, "query", "AAAAAA99")))
    assert stopped.outcome == "throttled" and stopped.retry_at is not None
    anyone = said("another", channel="wechat")  # the case itself is guarded too
    blocked = proof(await applied(store, anyone, ProveCase(fresh, "query", "BBBBBBBB")))
    assert blocked.outcome == "throttled"
    types = [t for t, _ in await backend.timeline(code)]
    assert types.count("proof.code_sent") == 3 and "proof.throttled" in types


# -- 补充 and 催办 (issue 17.3) ----------------------------------------------------------------------


async def test_a_supplement_is_added_to_an_open_case_and_starts_a_review_on_an_answered_one(
    backend: Backend,
) -> None:
    store, owner = backend.store, said()
    now = utcnow()
    open_case, answered, late, declined = [
        (await applied(store, owner, filing(origin=f"webchat:c1:s{i}"))).case_code for i in range(4)
    ]
    await backend.move_case(answered, "closed", review_until=now + timedelta(days=3))
    await backend.move_case(late, "closed", review_until=now - timedelta(minutes=1))
    await backend.move_case(declined, "redirected")
    decide_by = now + timedelta(days=30)

    async def supplement(code: str, inbound: Inbound = owner) -> str:
        command = Supplement(
            code,
            text="灯杆旁边的电线也露出来了",
            attachments=(Media("image", "m-1", ""),),
            review_decision_due=decide_by,
        )
        return str((await applied(store, inbound, command)).values["supplement"])

    assert await supplement(open_case, said("c2")) == "not_possible"  # not theirs
    assert await supplement(open_case) == "added"
    assert await supplement(answered) == "review"
    assert await supplement(late) == "too_late"
    assert await supplement(declined) == "not_possible"
    view = await case_of(store, owner, answered)
    assert view is not None and view.status == "review_requested"
    assert [s.type for s in view.history] == ["submitted", "review_requested", "supplemented"]
    [(_, data)] = [(t, d) for t, d in await backend.timeline(open_case) if t == "supplemented"]
    assert data == {"channel": "webchat", "text": "灯杆旁边的电线也露出来了", "attachments": 1}
    updates = [(c, d) for t, c, d in await backend.sent() if t == "case.updated"]
    assert [c for c, _ in updates] == [open_case, answered]
    assert updates[0][1] == {"status": "submitted", "supplemented": data}


async def test_an_urge_is_taken_once_per_period_and_counted(backend: Backend) -> None:
    store, owner = backend.store, said()
    code = (await applied(store, owner, filing())).case_code
    week = timedelta(days=7)
    assert (await applied(store, said("c2"), Urge(code, week))).values["urge"] == (
        "not_open",
        None,
    )
    assert (await applied(store, owner, Urge(code, week))).values["urge"] == ("urged", 1)
    before = utcnow()
    outcome, when = (await applied(store, owner, Urge(code, week))).values["urge"]
    assert outcome == "too_soon" and before + week - timedelta(minutes=1) < when <= utcnow() + week
    # With a period gone by (here: none at all), the next one counts on.
    assert (await applied(store, owner, Urge(code, timedelta(0)))).values["urge"] == ("urged", 2)
    await backend.move_case(code, "closed")
    assert (await applied(store, owner, Urge(code, timedelta(0)))).values["urge"] == (
        "not_open",
        None,
    )
    urges = [d for t, d in await backend.timeline(code) if t == "urged"]
    assert urges == [{"channel": "webchat", "count": 1}, {"channel": "webchat", "count": 2}]
    assert [d for t, _, d in await backend.sent() if t == "case.updated"] == [
        {"status": "submitted", "urged": 1},
        {"status": "submitted", "urged": 2},
    ]


async def test_a_case_starts_where_the_filing_routes_it(backend: Backend) -> None:
    """Department (the office's suggestion) and mailbox (a letter to a leader) as filed."""
    results = await applied(backend.store, said(), filing(department="cgj", mailbox="mayor"))
    [(kind, code, data)] = [s for s in await backend.sent() if s[0] == "case.submitted"]
    assert (kind, code) == ("case.submitted", results.case_code)
    assert (data["department"], data["mailbox"]) == ("cgj", "mayor")
