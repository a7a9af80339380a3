"""`GET/POST /wechat`: authenticate, read, and answer within WeChat's 5 seconds — or push later.

WeChat waits 5 s for the passive reply, then re-sends the push (three more times at most). The
engine deduplicates by message id and gives a re-delivery the first delivery's replies, so every
delivery may answer passively. A delivery the engine cannot serve within the budget answers
`success` (an empty body when encrypted) and its replies go out by the customer-service API.
Exactly one delivery of a message may push: it claims the message in the shared cache first.

Under overload the budget shrinks, so that no push waits long for its answer (shedding): at most
`max_turns` turns run at once, the others wait in line (first come, first served), and once
half of them are taken a delivery waits `shed_budget` instead of the whole budget; one whose
turn is not done by then answers `success` and its replies are pushed when done. A delivery
that finds every slot taken still waits its short budget rather than answering at once: a
passive reply costs a fraction of a pushed one (no claim, journal entry or API call), and a
citizen gets it sooner than from a growing line of pushes. Both only when replies can be
pushed at all (an AppSecret is set).

A delivery answered `success` whose replies are still to push is written to the journal
(`services.pending`, Redis) before the answer and removed once the push is done: a process that
dies meanwhile leaves it there, and another process, seeing its owner no longer alive, takes it,
runs the turn again (the engine deduplicates) and pushes the replies. Without Redis there is no
journal: one process serves WeChat, and a crash loses what it had not pushed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from conversation.messages import Inbound, Reply, SeenAgain

from ..base import Handler, PendingReplies, Services, Throttled, read_body
from .envelope import Envelope, Malformed, Opened, Refused
from .inbound import Observation, read
from .render import as_text, passive_reply, split

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
# How the replies of one message reached the citizen, kept while WeChat could still re-send it.
PUSHED, PASSIVE = "push", "passive"
CLAIM_TTL = 3600.0
# WeChat re-sends a push it got no answer to after 5 s. A message created this long ago may be
# such a re-send, so it looks whether its replies were already pushed; a fresh one cannot have
# been (and skips the shared-cache read, which on SQLite costs a fifth of the throughput).
RESEND_AGE = 4.0
# On shutdown, replies still being worked on get this long to go out before they are cancelled.
CLOSE_GRACE = 10.0
# How often this process says it is alive to the journal (whose liveness lasts 15 s), and looks
# for the entries of processes that stopped (every other beat).
BEAT = 5.0
RECOVER_EVERY = 2

T = TypeVar("T")
Push = Callable[[str, Sequence[str]], Awaitable[None]]


class Callback:
    def __init__(
        self,
        envelope: Envelope,
        handle: Handler,
        *,
        budget: float,
        apology: str,
        push: Push,
        shed_budget: float | None = None,
        max_turns: int = 0,
    ) -> None:
        """`shed_budget` and `max_turns` (0: no limit) shed load; leave them unset when replies
        cannot be pushed, and every turn gets the whole `budget`."""
        self.envelope = envelope
        self.handle = handle
        self.budget = budget
        self.shed_budget = min(shed_budget, budget) if shed_budget is not None else budget
        self.max_turns = max_turns
        self.apology = apology
        self.push = push
        self.services: Services | None = None
        self.tasks: set[asyncio.Future[Any]] = set()
        self._slots = asyncio.Semaphore(max_turns) if max_turns else None
        # Each sender's latest turn: the next one starts after it, so that messages waiting in
        # line are worked on in the order they came (the conversation lock is not a queue).
        self._latest: dict[str, asyncio.Future[Any]] = {}
        self.running = 0  # turns being worked on (holding a slot)
        self.shed = 0  # deliveries answered `success`, their replies pushed when done
        self.recovered = 0  # deliveries taken from the journal of a process that stopped
        self.journal: PendingReplies | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        self._stopped = asyncio.Event()

    async def start(self, services: Services) -> None:
        self.services = services
        if services.pending is not None:
            self.journal = services.pending("wechat")
            self._keeper = asyncio.create_task(self._keep())

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wechat", self.verify_url), web.post("/wechat", self.receive)]

    async def verify_url(self, request: web.Request) -> web.Response:
        """WeChat's check of the server URL: echo `echostr` when the signature is ours."""
        try:
            self.envelope.check_query(request.query)
        except Refused as exc:
            return self._refuse(exc.reason)
        return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.StreamResponse:
        started = asyncio.get_running_loop().time()
        try:
            self.envelope.check_query(request.query)
            body = await read_body(request, MAX_BODY)
            opened = self.envelope.open(request.query, body)
            pushed = read(opened)
        except Refused as exc:
            return self._refuse(exc.reason)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text=f"larger than {MAX_BODY} bytes")
        except Malformed as exc:
            log.warning("wechat push unreadable: %s", exc)
            return web.Response(status=400, text=str(exc))
        if isinstance(pushed, Observation):
            await self._observe(pushed)
            return self._ack(opened)
        return await self._answer(request, opened, pushed, started)

    def _budget(self) -> float:
        """The whole budget while there is room; the short one once this turn makes half the
        slots taken, or waits in line for one."""
        if self._slots is not None and (self.running + 1) * 2 > self.max_turns:
            return self.shed_budget
        return self.budget

    async def _answer(
        self, request: web.Request, opened: Opened, inbound: Inbound, started: float
    ) -> web.StreamResponse:
        claim = f"wechat:answer:{inbound.sender}:{inbound.message_id}"
        deadline = started + self._budget()
        # In line before anything is awaited, so that a sender's messages keep their order.
        turn = self._spawn_turn(inbound)
        remaining = deadline - asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({turn}, timeout=max(remaining, 0.0))
        if not done:
            # Claimed now, before answering `success`: a re-delivery that gets the replies
            # passively later will see that they are on their way and stay silent, and one
            # whose replies are claimed pushes nothing (its turn finds them remembered).
            if await self._claim(claim, PUSHED):
                self.shed += 1
                log.info("wechat reply over budget; it will be pushed when ready")
                await self._journal(claim, inbound)
                self.spawn(self._push_when_ready(turn, inbound, claim))
            return self._ack(opened)
        pieces = split(as_text(self._replies(turn)))
        if not pieces:
            return self._ack(opened)
        if len(pieces) == 1:
            if _may_be_resend(opened) and await self._claimed(claim) == PUSHED:
                return self._ack(opened)
            return self._passive(opened, inbound, pieces[0])
        # Too long for one reply: the first piece now, the rest pushed once by whoever claims.
        if not await self._claim(claim, PASSIVE):
            if await self._claimed(claim) == PUSHED:
                return self._ack(opened)
            return self._passive(opened, inbound, pieces[0])
        response = self._passive(opened, inbound, pieces[0])
        await response.prepare(request)
        await response.write_eof()  # sent before the rest, so the pieces arrive in order
        self.spawn(self.push(inbound.sender, pieces[1:]))
        return response

    def _spawn_turn(self, inbound: Inbound) -> asyncio.Future[list[Reply]]:
        before = self._latest.get(inbound.sender)
        turn = self.spawn(self._handled(inbound, before))
        self._latest[inbound.sender] = turn
        turn.add_done_callback(lambda done: self._done(inbound.sender, done))
        return turn

    def _done(self, sender: str, turn: asyncio.Future[Any]) -> None:
        if self._latest.get(sender) is turn:
            del self._latest[sender]

    async def _handled(
        self, inbound: Inbound, before: asyncio.Future[Any] | None = None
    ) -> list[Reply]:
        if before is not None:
            await asyncio.wait({before})  # the sender's previous message first
        if self._slots is None:
            return await self._turn(inbound)
        async with self._slots:  # first come, first served
            self.running += 1
            try:
                return await self._turn(inbound)
            finally:
                self.running -= 1

    async def _turn(self, inbound: Inbound) -> list[Reply]:
        try:
            return await self.handle(inbound)
        except Throttled as exc:
            return [Reply(exc.text)]  # a passive reply, so WeChat does not send it again

    def _replies(self, turn: asyncio.Future[list[Reply]]) -> list[Reply]:
        if turn.exception() is not None:
            return [Reply(self.apology)]  # logged by spawn's callback
        return turn.result()

    async def _push_when_ready(
        self,
        turn: asyncio.Future[list[Reply]],
        inbound: Inbound,
        claim: str,
        recovered: bool = False,
    ) -> None:
        """Pushes the turn's replies, then settles the journal entry. A cancelled turn or push
        (a close out of time) leaves the entry for another process to recover."""
        try:
            replies = await turn
        except Exception:
            replies = [Reply(self.apology)]
        # A recovered message handled so long ago that its replies are forgotten: the first
        # process got that far, there is nothing to say now.
        if not (recovered and isinstance(replies, SeenAgain)):
            try:
                await self.push(inbound.sender, split(as_text(replies)))
            except Exception:
                log.exception("wechat: pushing the replies to %s failed", inbound.sender)
        await self._settle(claim)

    async def _journal(self, claim: str, inbound: Inbound) -> None:
        if self.journal is None:
            return
        try:
            await self.journal.put(claim, inbound)
        except Exception:
            # The reply is still pushed by this process; only a crash now would lose it.
            log.exception("wechat: the pending-replies journal is unavailable")

    async def _settle(self, claim: str) -> None:
        if self.journal is None:
            return
        try:
            await self.journal.done(claim)
        except Exception:
            # Left there, it is recovered when this process stops: replies pushed twice at
            # worst, which is better than never.
            log.exception("wechat: a pushed delivery stays in the pending-replies journal")

    async def _keep(self) -> None:
        """Says this process is alive; on start and every RECOVER_EVERY beats, takes what
        stopped processes left in the journal."""
        assert self.journal is not None
        beats = 0
        while not self._stopped.is_set():
            try:
                await self.journal.beat()
                if beats % RECOVER_EVERY == 0 and not self._closing:
                    await self.recover()
            except Exception:
                log.exception("wechat: the pending-replies journal is unavailable")
            beats += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), BEAT)

    async def recover(self) -> int:
        """Runs the turns of the deliveries that stopped processes left, and pushes their
        replies (those the engine still remembers, or new ones for a turn never finished)."""
        assert self.journal is not None
        taken = await self.journal.take_orphans()
        for claim, inbound in taken:
            log.info("wechat: recovering a delivery whose process stopped before its push")
            self.recovered += 1
            turn = self._spawn_turn(inbound)
            self.spawn(self._push_when_ready(turn, inbound, claim, recovered=True))
        return len(taken)

    async def _claim(self, key: str, how: str) -> bool:
        """True when this delivery is the one that delivers the message's replies this way."""
        assert self.services is not None
        try:
            return await self.services.shared.add(key, how, CLAIM_TTL)
        except Exception:
            # Better a reply twice than never: without the cache we deliver anyway.
            log.exception("wechat: shared cache unavailable for the delivery claim")
            return True

    async def _claimed(self, key: str) -> str | None:
        assert self.services is not None
        try:
            return await self.services.shared.get(key)
        except Exception:
            log.exception("wechat: shared cache unavailable for the delivery claim")
            return None

    async def _observe(self, observation: Observation) -> None:
        assert self.services is not None
        log.info("wechat %s from %s (recorded, no reply)", observation.what, observation.sender)
        self.services.observed("wechat", observation.what)
        if observation.report is not None:
            try:
                await self.services.delivery_report(observation.report)
            except Exception:
                log.exception("wechat: delivery report %s not recorded", observation.report)

    def _passive(self, opened: Opened, inbound: Inbound, text: str) -> web.Response:
        xml = self.envelope.seal(passive_reply(text, inbound.raw), opened)
        return web.Response(text=xml, content_type="application/xml")

    def _ack(self, opened: Opened) -> web.Response:
        # Safe mode: the docs do not say plaintext `success` is accepted, and an empty body is
        # documented as equivalent (nothing shown, no re-send).
        if opened.encrypted:
            return web.Response(body=b"")
        return web.Response(text="success", content_type="text/plain")

    def _refuse(self, reason: str) -> web.Response:
        log.warning("wechat push refused: %s", reason)
        if self.services is not None:
            self.services.rejected("wechat", reason)
        return web.Response(status=403, text="forbidden")

    def spawn(self, work: Awaitable[T]) -> asyncio.Future[T]:
        """Work that outlives the request (a turn, a push), kept until done and logged if it
        fails, so close() can let it finish."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("wechat background work failed", exc_info=task.exception())

    async def close(self) -> None:
        # Still alive while the work in progress finishes (no other process takes it), but
        # taking no more.
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_GRACE
        if self.tasks:
            log.info("wechat: waiting for %d replies still in progress", len(self.tasks))
        # A turn that finishes may start its push: wait again until nothing is left, or time is.
        while self.tasks and loop.time() < deadline:
            await asyncio.wait(set(self.tasks), timeout=deadline - loop.time())
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._keeper is not None:
            self._stopped.set()
            _, late = await asyncio.wait({self._keeper}, timeout=3)
            for task in late:
                task.cancel()  # a journal call that did not come back: give up on it
            self._keeper = None
        if self.journal is not None:
            try:
                # What was cancelled stays in the journal: the other processes take it now
                # rather than when this one's liveness runs out.
                await self.journal.leave()
            except Exception:
                log.exception("wechat: the pending-replies journal is unavailable")


def _may_be_resend(opened: Opened) -> bool:
    created = opened.root.findtext("CreateTime", "")
    return not created.isdigit() or time.time() - int(created) >= RESEND_AGE
