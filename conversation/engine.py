"""The one entry every channel calls: `Engine.handle(inbound) -> list[Reply]`.

A turn: recognise a re-delivery (same channel message id → the same replies, nothing new),
serialise per conversation, load state, run the current flow step (pure logic plus read-only
lookups), then commit state, case rows, timeline, outbox and the dedupe record as one unit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from .codes import find_case_code
from .commands import RelayToStaff, RequestHandoff, Results, Unsubscribe
from .faq_match import FaqMatcher, phrasings_of
from .flows import faq, follow, forms, handoff, rating, resume, status
from .flows.base import BACK, CANCEL, MENU, STAFF, Context, Flow, Outcome, numbered
from .flows.menu import FOLLOW_FLOWS, elsewhere, menu_action, menu_reply
from .flows.registry import flows_for
from .flows.small_talk import small_talk
from .messages import Inbound, InvalidText, Reply, SeenAgain
from .office import OfficeConfig
from .places import PlaceFinder
from .ports import Conflict, ConversationStore, DeadlinePolicy, Forgotten
from .rating import labels as rating_scale_labels
from .state import ConversationState
from .validators import choice_number
from .validators import description as valid_description

log = logging.getLogger(__name__)

# Events that change the conversation; any other event (VIEW, LOCATION reports, delivery
# receipts) is the channel's to record and gets no reply. `unsupported` is a message the engine
# cannot read (a sticker, a video, a file): the citizen is told what to send instead.
EVENTS = frozenset({"subscribe", "unsubscribe", "scan", "menu", "unsupported"})
MAX_ATTEMPTS = 3


class Engine:
    def __init__(
        self,
        store: ConversationStore,
        office: OfficeConfig,
        deadlines: DeadlinePolicy,
        *,
        tz: tzinfo | None = None,
        session_lifetime: timedelta = timedelta(hours=24),
        rating_scale: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sms_proof: bool = True,
        follow_only: frozenset[str] = frozenset({"sms"}),
    ) -> None:
        self.store = store
        self.office = office
        self.flows = flows_for(office)
        self.deadlines = deadlines
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self.session_lifetime = session_lifetime
        self.rating_scale = rating_scale
        self.clock = clock
        self.sms_proof = sms_proof  # an SMS provider can text a 验证码
        # Channels that follow cases but file none (SMS: docs/sms.md, "Following by SMS").
        self.follow_only = follow_only
        self.faq = (
            FaqMatcher([phrasings_of(e.question("zh"), e.examples, e.keywords) for e in office.faq])
            if office.faq
            else None
        )
        self.places = PlaceFinder(office.places)

    async def handle(self, inbound: Inbound) -> list[Reply]:
        if inbound.kind == "event" and inbound.event not in EVENTS:
            return []
        try:
            inbound = inbound.cleaned()
        except InvalidText:
            t = self.office.catalog.for_language(_language(inbound.language))
            return [Reply(t("invalid_text"))]
        key = inbound.conversation_key
        dedupe_key = f"{key}:{inbound.message_id}" if inbound.message_id else ""
        async with self.store.lock(key, dedupe_key):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                if dedupe_key:
                    # Checked inside the lock: a retry that waited for the first delivery
                    # finds its replies here and gets exactly the same answer.
                    seen = await self.store.recall(dedupe_key)
                    if seen is not None:
                        return self._again(seen, inbound)
                try:
                    return await self._turn(inbound, key, dedupe_key)
                except Conflict:
                    if attempt == MAX_ATTEMPTS:
                        raise
                    log.info("turn conflict on %s, attempt %d", inbound.channel, attempt)
        raise AssertionError("unreachable")

    def _again(self, seen: list[Reply], inbound: Inbound) -> list[Reply]:
        """A re-delivered message's answer: the replies it got, or, once they are no longer
        kept, that it was taken already (it is never handled twice); an event, nothing."""
        if not isinstance(seen, Forgotten) or inbound.kind == "event":
            return seen
        t = self.office.catalog.for_language(_language(inbound.language))
        return SeenAgain([Reply(t("seen_again"))])

    def rating_invitation(self, code: str, language: str) -> list[Reply]:
        """The survey question for a closed case, as the chat sends it."""
        t = self.office.catalog.for_language(_language(language))
        return [
            Reply(t("rate.invite", code=code), numbered(rating_scale_labels(t, self.rating_scale)))
        ]

    async def expect_rating(self, channel: str, sender: str, code: str, language: str = "") -> None:
        """The invitation reached the chat: the citizen's next message answers it.

        Called only after the send succeeded, so a chat that never showed the question never
        reads a later "1" as a rating. A form in progress is set aside, not lost.
        """

        def ask(state: ConversationState) -> None:
            state.set_aside(self.flows.forms)
            rating.await_score(state, code)

        await self._change(f"{channel}:{sender}", language, ask)

    async def hand_over(self, channel: str, sender: str, thread: int) -> None:
        """A staff member took the conversation: from now on the citizen talks with them."""

        def to_staff(state: ConversationState) -> None:
            state.staff_thread = thread

        await self._change(f"{channel}:{sender}", "", to_staff)

    async def take_back(self, channel: str, sender: str, thread: int) -> None:
        """The staff member let go: the bot answers again (unless another thread took over)."""

        def to_bot(state: ConversationState) -> None:
            if state.staff_thread == thread:
                state.staff_thread = None

        await self._change(f"{channel}:{sender}", "", to_bot)

    async def _change(
        self, key: str, language: str, change: Callable[[ConversationState], None]
    ) -> None:
        """Change a conversation's state from outside a turn, under its lock."""
        async with self.store.lock(key):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    async with self.store.turn() as turn:
                        now = self.clock()
                        loaded = await turn.load_state(key)
                        state = self._current(loaded, now, language)
                        change(state)
                        state.updated_at = now
                        await turn.save_state(key, state)
                        await turn.commit()
                    return
                except Conflict:
                    if attempt == MAX_ATTEMPTS:
                        raise

    def _current(
        self, loaded: ConversationState | None, now: datetime, language: str
    ) -> ConversationState:
        """The conversation as it stands, or a fresh one when it was never begun or expired.
        A staff member's hold outlives the expiry: only they end it."""
        if loaded is not None and now - loaded.updated_at <= self.session_lifetime:
            return loaded
        return ConversationState(
            language=_language(language),
            version=loaded.version if loaded else 0,
            staff_thread=loaded.staff_thread if loaded else None,
        )

    async def _turn(self, inbound: Inbound, key: str, dedupe_key: str) -> list[Reply]:
        now = self.clock()
        async with self.store.turn() as turn:
            loaded = await turn.load_state(key)  # takes the conversation's database lock, if any
            if dedupe_key:
                # Again inside the transaction: another process may have answered it meanwhile.
                seen = await turn.recall(dedupe_key)
                if seen is not None:
                    return self._again(seen, inbound)
            first_contact = loaded is None or now - loaded.updated_at > self.session_lifetime
            state = self._current(loaded, now, inbound.language)
            ctx = Context(
                inbound=inbound,
                state=state,
                lookups=turn.lookups,
                office=self.office,
                t=self.office.catalog.for_language(state.language),
                now=now,
                tz=self.tz,
                deadlines=self.deadlines,
                flows=self.flows,
                rating_scale=self.rating_scale,
                first_contact=first_contact,
                sms_proof=self.sms_proof,
                faq=self.faq,
                places=self.places,
                follow_only=inbound.channel in self.follow_only,
            )
            idle = now - state.updated_at
            results = Results()
            if state.staff_thread is not None and inbound.kind != "event":
                photos = tuple(m for m in inbound.media if m.kind == "image")
                relay = RelayToStaff(state.staff_thread, relayed_words(ctx), photos)
                results = await turn.apply([relay], inbound)
                if results.values.get("relayed"):
                    outcome = Outcome()  # the staff member answers, not the bot
                else:
                    state.staff_thread = None  # the thread ended meanwhile: the bot again
            if state.staff_thread is None or inbound.kind == "event":
                outcome = await self._step(ctx, idle)
                if outcome.commands:
                    results = await turn.apply(outcome.commands, inbound)
            replies = outcome.replies + (outcome.after(results) if outcome.after else [])
            state.updated_at = now
            await turn.save_state(key, state)
            if dedupe_key:
                await turn.remember(dedupe_key, replies)
            await turn.commit()
        return replies

    async def _step(self, ctx: Context, idle: timedelta) -> Outcome:
        inbound, state = ctx.inbound, ctx.state
        if inbound.kind == "event":
            return await self._event(ctx)
        outcome = Outcome()
        words = self.office.risk_words_in(inbound.text) if inbound.text else []
        if words and not state.risk_alerted:
            # Danger comes first: emergency numbers at once and a person paged, without
            # interrupting what the citizen is doing (their message is still taken below).
            state.risk_alerted = True
            outcome.say(ctx.t("risk.emergency"))
            outcome.commands.append(
                RequestHandoff(reason="risk", summary=inbound.text[:200], risk_words=tuple(words))
            )
        answer = await self._respond(ctx, idle)
        if ctx.follow_only and ctx.in_form:
            # However a form was reached (the menu, a told matter, "2 不是，我要反映" under a
            # FAQ answer), this channel files nothing: where to file instead.
            state.draft = None
            state.to_menu()
            answer = Outcome(replies=[elsewhere(ctx)])
        return outcome.extend(answer)

    async def _respond(self, ctx: Context, idle: timedelta) -> Outcome:
        state, word = ctx.state, ctx.word
        if word in CANCEL:
            state.draft = None
            state.to_menu()
            return Outcome(replies=[menu_reply(ctx, lead=ctx.t("cancelled"))])
        if word in MENU:
            ctx.set_aside()
            return Outcome(
                replies=[menu_reply(ctx, greeting=word not in ("菜单", "menu", "/menu"))]
            )
        if word in STAFF:
            if ctx.follow_only:
                return Outcome(replies=[elsewhere(ctx, "sms.no_staff")])
            return await handoff.request(ctx)
        if word in BACK:
            return self._back(ctx)
        if ctx.in_form and idle > timedelta(minutes=self.office.resume_after_minutes):
            return resume.offer(ctx)
        flow = self.flows.get(state.flow)
        if flow is not None and flow.handle is not None:
            outcome = await flow.handle(ctx)
            if outcome is not None:
                return outcome
        return await self._menu(ctx)

    async def _menu(self, ctx: Context) -> Outcome:
        """At the main menu: an entry, a case code, a greeting, a matter in free text, or help."""
        inbound, state = ctx.inbound, ctx.state
        chosen = menu_action(ctx) if inbound.kind == "text" else None
        if chosen is not None:
            return await self._open(ctx, chosen)
        action = follow.word_action(ctx) if inbound.kind == "text" else None
        if action is not None:
            return await follow.from_menu(ctx, action)
        code = find_case_code(inbound.text)
        if code is not None:
            return await status.lookup(ctx, code)
        state.to_menu()
        talk = small_talk(inbound.text) if inbound.kind == "text" else None
        if talk == "thanks":
            return Outcome(replies=[menu_reply(ctx, lead=ctx.t("menu.thanks"))])
        if talk == "greeting":
            return Outcome(replies=[menu_reply(ctx, greeting=True)])
        if inbound.kind == "text" and inbound.text.strip() and choice_number(inbound.text) is None:
            ctx.remember_words()  # a question or a matter: staff asked for next get it
            answered = faq.answer_typed(ctx)
            if answered is not None:
                return answered
            if isinstance(valid_description(inbound.text), str):
                return self._file_free_text(ctx)
        if inbound.kind == "voice":
            # No transcript (WeChat's recognition is off or retired): ask kindly for words.
            return Outcome(replies=[menu_reply(ctx, lead=ctx.t("voice.type_please"))])
        if inbound.kind in ("image", "video", "location"):
            return Outcome(replies=[menu_reply(ctx, lead=self._media_hint(ctx))])
        if ctx.first_contact:
            return Outcome(replies=[menu_reply(ctx, greeting=True)])
        return Outcome(replies=[menu_reply(ctx, lead=ctx.t("menu.unknown"))])

    def _file_free_text(self, ctx: Context) -> Outcome:
        """A matter told at the menu starts the office's free-text form with it as the description
        (and the place and category it suggests, to confirm)."""
        form = self.office.forms[self.flows.free_text]
        return forms.start_told(ctx, form, ctx.inbound.text.strip())

    def _media_hint(self, ctx: Context) -> str:
        flow = self.flows.get(self.flows.free_text)
        return ctx.t("menu.media", key=flow.menu.key if flow and flow.menu else "")

    async def _open(self, ctx: Context, flow: Flow) -> Outcome:
        state = ctx.state
        if ctx.follow_only and flow.name not in FOLLOW_FLOWS:
            state.to_menu()
            key = "sms.no_staff" if flow.name == "handoff" else "sms.file_elsewhere"
            return Outcome(replies=[elsewhere(ctx, key)])
        if flow.form and state.draft and state.draft.get("flow") == flow.name:
            return resume.offer(ctx)
        if flow.open is None:
            state.to_menu()
            return Outcome(replies=[menu_reply(ctx)])
        if flow.form:
            state.enter(flow.name)  # every form opens alike: the state says which one
        return await flow.open(ctx)

    async def _event(self, ctx: Context) -> Outcome:
        inbound, state = ctx.inbound, ctx.state
        if inbound.event == "unsupported":
            # The conversation stays where it is: the next message answers the same question.
            return Outcome(replies=[Reply(ctx.t("unsupported"))])
        if inbound.event == "unsubscribe":
            state.draft = None
            state.to_menu()
            return Outcome(commands=[Unsubscribe()])
        if inbound.event == "menu":
            # A button of the channel's own menu names the flow it opens (a WeChat click key);
            # one this office does not know shows the main menu.
            flow = self.flows.by_event(inbound.event_key)
            if flow is not None:
                ctx.set_aside()
                return await self._open(ctx, flow)
        elif inbound.event_key:
            # A QR code printed at a town office or by a grid worker tags what is filed after it.
            state.source = inbound.event_key
        if ctx.in_form:
            return resume.offer(ctx)
        state.to_menu()
        return Outcome(replies=[menu_reply(ctx, greeting=True)])

    def _back(self, ctx: Context) -> Outcome:
        if ctx.in_form:
            outcome = forms.back(ctx, self.office.forms[ctx.state.flow])
            if outcome is not None:
                return outcome
        ctx.set_aside()
        return Outcome(replies=[menu_reply(ctx)])


def relayed_words(ctx: Context) -> str:
    """What a staff member reads of the citizen's message: the words, or what was sent
    (in the office's language: staff read Chinese whatever the citizen's is)."""
    inbound = ctx.inbound
    if inbound.text:
        return inbound.text[:2000]
    texts = ctx.office.catalog
    location = inbound.location
    if inbound.kind == "location" and location is not None:
        place = location.label or f"{location.lat:.5f},{location.lng:.5f}"
        return texts.text("zh", "relay.location", place=place)
    kind = inbound.kind if inbound.kind in ("image", "voice") else "other"
    return texts.text("zh", f"relay.{kind}")


def _language(code: str) -> str:
    """Chinese unless the channel says the person reads another language."""
    return "en" if code and not code.lower().startswith("zh") else "zh"
