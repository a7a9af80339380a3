"""What a citizen's SMS reply means: a rating, an opt-out, a comment, a review request — or unclear.

Every reply is taken once: its provider key (hashed again with our key, since it contains the
phone) is recorded in the same transaction as what it caused, so Alibaba's re-deliveries, hours
later, change nothing. A reply is bound to a case only when that is certain: one open survey, or
the case's short reference in the reply. Several open surveys and no reference → the citizen is
asked which (listing the references) — never guessed. Anything unclear gets at most one
clarifying SMS per survey. TD / T / R / 退订 opt the number out of every SMS, for good.

A reply no survey takes (no open survey, no rating just given) is not a survey reply: it goes to
`otherwise` when there is one — the conversation by SMS (`sms_conversation.py`), which then
records it as taken itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import load_only

from channels.sms import SmsReply
from conversation import rating
from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.surveys import SurveyRules
from conversation.catalog import Catalog
from conversation.codes import short_reference
from conversation.ports import Conflict
from conversation.survey_reply import OptOut, Rated, read_reply
from conversation.survey_text import survey_options
from conversation.validators import normalize
from storage import ratings
from storage.models import Case, SmsInbound, Survey, utcnow
from storage.people import insert_ignoring_duplicates
from storage.uow import UnitOfWork, Units

log = logging.getLogger(__name__)

REVIEW_WORDS = frozenset({"复查", "申请复查", "要复查", "review"})


# What a batch of ratings reads and writes of a case (`_only`, `lifecycle.advance`,
# `ratings.record_rating` and `write_rated`, the timeline, outbox and notifications): only
# these are loaded. A case has some fifty columns, three of them JSON decoded on every load,
# and each loaded column is an attribute the ORM populates: for thousands of ratings that was
# most of their reading. Anything else is `raiseload`, so a change that reads one more fails
# the batch (which then goes one by one, with full cases) instead of reading it lazily.
BATCH_CASE_COLUMNS = (
    Case.id,
    Case.code,
    Case.status,
    Case.review_due_at,
    Case.language,
    Case.updated_at,
    *(getattr(Case, name) for name in ratings.RATED_CASE),
)


@dataclass(eq=False)  # by identity: a batch removes the one it rated from a phone's list
class _Open:
    survey: Survey
    case: Case

    @property
    def ref(self) -> str:
        return short_reference(self.case.code)


def _only(parsed: Rated, open_surveys: list[_Open]) -> _Open | None:
    """The one open survey a rating names (by its reference, or as the phone's only one), if
    its case can be rated; None when `__call__` must decide (ask which, or nothing to rate)."""
    candidates = open_surveys
    if parsed.reference:
        candidates = [s for s in open_surveys if s.ref == parsed.reference.upper()]
    if len(candidates) != 1 or candidates[0].case.status != "closed":
        return None
    return candidates[0]


class SurveyReplies:
    """What each SMS reply comes to, one at a time, from the SMS inbox (`bot/backoffice/sms_inbox.py`)."""

    def __init__(
        self,
        units: Units,
        catalog: Catalog,
        rules: SurveyRules,
        deadlines: LegalDeadlines,
        tz: tzinfo,
        otherwise: Callable[[SmsReply], Awaitable[None]] | None = None,
    ) -> None:
        self.otherwise = otherwise
        self.units = units
        self.catalog = catalog
        self.rules = rules
        self.deadlines = deadlines
        self.tz = tz

    async def __call__(self, reply: SmsReply) -> None:
        now = utcnow()
        async with self.units() as uow:
            # The provider's key contains the phone: stored only as our keyed hash of it.
            key = uow.cipher.digest(reply.dedupe_key, "sms-inbound")
            first = await insert_ignoring_duplicates(
                uow.session, SmsInbound, {"key": key, "created_at": now}, ["key"]
            )
            if not first:
                log.info("SMS reply %s re-delivered: already taken", reply.masked_phone)
                return
            taken = await self._take(uow, reply, now)
            if taken or self.otherwise is None:
                await uow.commit()
                return
            # Not a survey reply: nothing recorded here (rolled back); the conversation takes it
            # and records its key with what it caused.
        await self.otherwise(reply)

    async def _take(self, uow: UnitOfWork, reply: SmsReply, now: datetime) -> bool:
        """What the reply did as a survey reply; False when it is none (nothing was done)."""
        phone_hash = uow.cipher.phone_hash(reply.phone)
        parsed = read_reply(reply.text, self.rules.scale)
        if isinstance(parsed, OptOut):
            await self._opt_out(uow, reply, phone_hash, now)
            return True
        open_surveys = await self._surveys(uow, phone_hash, now, status="open")
        if isinstance(parsed, Rated):
            if not open_surveys:
                return False  # a number with no survey waiting: a choice in the conversation
            await self._rate(uow, parsed, open_surveys, now)
            return True
        word = normalize(reply.text)
        recent = [
            s
            for s in await self._surveys(uow, phone_hash, now, status="answered")
            if s.survey.comment_until is not None and s.survey.comment_until > now
        ]
        if word in REVIEW_WORDS and recent:
            await self._review(uow, recent[0], now)
        elif recent and reply.text.strip():
            # Free text right after a rating: its comment (for 不满意, the reason).
            await ratings.add_comment(uow, recent[0].case, reply.text.strip()[:500], "sms")
        elif open_surveys:
            await self._clarify(uow, open_surveys, now)
        else:
            log.info("SMS reply from %s matches no open survey", reply.masked_phone)
            return False
        return True

    async def many(self, replies: Sequence[SmsReply]) -> list[bool]:
        """The plain ratings among many replies, in one transaction; which replies were handled.

        Taken here, per phone and in order, are its replies up to the first that is not a
        rating naming exactly one of the phone's open surveys (of a case still closed), and
        re-deliveries among them, which change nothing. The rest — comments, opt-outs, review
        requests, anything unclear, a second rating, and every reply of that phone after one
        of these — is left for `__call__`, one at a time, in order, after this commits: a
        comment never overtakes its rating. The open surveys of all phones come in one query
        that locks their cases (in case order, so two batches never deadlock), the re-delivery
        keys in one query and one insert, each case's last timeline entry in one query; then the
        ratings on cases and surveys by one UPDATE each (executemany), and the timeline
        entries, `case.rated` rows and notifications (an unhappy rating's) by one INSERT each
        — Core statements, not the unit of work's flush. Raises on any failure, with nothing
        written: the caller then goes one by one.
        """
        handled = [False] * len(replies)
        parsed = [read_reply(r.text, self.rules.scale) for r in replies]
        if not any(isinstance(p, Rated) for p in parsed):
            return handled
        now = utcnow()
        async with self.units() as uow:
            cipher = uow.cipher
            phones = {r.phone: cipher.phone_hash(r.phone) for r in replies}
            keys = [cipher.digest(r.dedupe_key, "sms-inbound") for r in replies]
            open_by_phone = await self._open_surveys_locked(uow, set(phones.values()), now)
            known = set(
                await uow.session.scalars(select(SmsInbound.key).where(SmsInbound.key.in_(keys)))
            )
            left: set[str] = set()  # phones whose next replies wait for `__call__`
            plan: list[tuple[Rated, _Open]] = []
            new_keys: list[str] = []
            for i, (reply, reading, key) in enumerate(zip(replies, parsed, keys, strict=True)):
                phone = phones[reply.phone]
                if phone in left:
                    continue
                if key in known:  # re-delivered (or twice in this batch): already taken
                    handled[i] = True
                    continue
                chosen = None
                if isinstance(reading, Rated):
                    chosen = _only(reading, open_by_phone.get(phone, []))
                if chosen is None or not isinstance(reading, Rated):
                    left.add(phone)
                    continue
                open_by_phone[phone].remove(chosen)  # answered now: not open for what follows
                known.add(key)
                new_keys.append(key)
                plan.append((reading, chosen))
                handled[i] = True
            if not plan:
                return handled  # only re-deliveries: nothing to write
            if await self._take_keys(uow, new_keys, now) != len(new_keys):
                # Another process took one of these replies meanwhile (a provider's re-delivery
                # handled at the same moment): one by one, each is then seen for what it is.
                raise Conflict("SMS reply taken elsewhere during the batch")
            await uow.events.preload([chosen.case.id for _, chosen in plan])
            uow.events.hold()
            uow.outbox.hold()
            uow.notifications.hold()
            with uow.session.no_autoflush:  # written set-based below, never by a flush
                rows: list[Case | Survey] = []
                for reading, chosen in plan:
                    await self._record(uow, reading, chosen, chosen.case, now)
                    rows += (chosen.case, chosen.survey)
                await ratings.write_rated(uow, rows)
                await uow.events.write_held()
                await uow.outbox.write_held()
                await uow.notifications.write_held()
            await uow.flush()
            await uow.commit()
        return handled

    async def _open_surveys_locked(
        self, uow: UnitOfWork, phone_hashes: set[str], now: datetime
    ) -> dict[str, list[_Open]]:
        """Each phone's open surveys (oldest first), their cases locked until the commit."""
        query = (
            select(Survey, Case)
            .join(Case, Survey.case_id == Case.id)
            .options(load_only(*BATCH_CASE_COLUMNS, raiseload=True))
            .where(
                Survey.phone_hash.in_(sorted(phone_hashes)),
                Survey.status == "open",
                Survey.expires_at > now,
            )
            .order_by(Case.id, Survey.created_at)
        )
        if uow.db.is_postgres:
            query = query.with_for_update(of=Case)
        by_phone: dict[str, list[_Open]] = {}
        for survey, case in (await uow.session.execute(query)).all():
            by_phone.setdefault(str(survey.phone_hash), []).append(_Open(survey, case))
        for surveys in by_phone.values():
            surveys.sort(key=lambda s: s.survey.created_at)
        return by_phone

    async def _take_keys(self, uow: UnitOfWork, keys: list[str], now: datetime) -> int:
        """Record the replies' keys as taken (set-based); how many were new. The keys are the
        parameters of one cached statement, sent as one multi-row INSERT (SQLAlchemy's
        "insertmanyvalues"), not a statement built and compiled anew for every batch."""
        insert = pg_insert if uow.db.is_postgres else sqlite_insert
        table = SmsInbound.__table__
        assert isinstance(table, Table)
        taken = await uow.session.scalars(
            insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key),
            [{"key": key, "created_at": now} for key in keys],
        )
        return len(list(taken))

    async def _surveys(
        self, uow: UnitOfWork, phone_hash: str, now: datetime, status: str
    ) -> list[_Open]:
        query = (
            select(Survey, Case)
            .join(Case, Survey.case_id == Case.id)
            .where(Survey.phone_hash == phone_hash, Survey.status == status)
            .order_by(Survey.answered_at.desc() if status == "answered" else Survey.created_at)
        )
        if status == "open":
            query = query.where(Survey.expires_at > now)
        rows = (await uow.session.execute(query)).all()
        return [_Open(survey, case) for survey, case in rows]

    async def _rate(
        self, uow: UnitOfWork, parsed: Rated, open_surveys: list[_Open], now: datetime
    ) -> None:
        candidates = open_surveys
        if parsed.reference:
            candidates = [s for s in open_surveys if s.ref == parsed.reference.upper()]
        if len(candidates) != 1:
            if open_surveys:
                await self._ask_which(uow, open_surveys, now)
            return
        chosen = candidates[0]
        case = await uow.cases.by_code(chosen.case.code, for_update=True)
        assert case is not None
        await self._record(uow, parsed, chosen, case, now)

    async def _record(
        self, uow: UnitOfWork, parsed: Rated, chosen: _Open, case: Case, now: datetime
    ) -> None:
        """The rating of one survey's case, which the caller holds (FOR UPDATE)."""
        scale = chosen.survey.scale
        unhappy = rating.is_unhappy(scale, parsed.score)
        rated = await ratings.record_rating(
            uow,
            case,
            score=parsed.score,
            scale=scale,
            label=rating.zh_label(scale, parsed.score),
            unhappy=unhappy,
            channel="sms",
            comment=parsed.comment,
            now=now,
            survey=chosen.survey,
        )
        if rated and unhappy:
            await self._follow_up(
                uow, case, f"unhappy:{chosen.survey.id}", "notice", "survey.sms.unhappy"
            )

    async def _review(self, uow: UnitOfWork, answered: _Open, now: datetime) -> None:
        case = await uow.cases.by_code(answered.case.code, for_update=True)
        assert case is not None
        due = self.deadlines.review_decision_due(now)
        until = case.review_due_at
        outcome = await ratings.request_review(uow, case, due, "sms", now)
        kind = f"review:{now.isoformat()}"
        if outcome == "requested":
            await self._follow_up(
                uow, case, kind, "notice", "survey.sms.review_requested", due=self._day(case, due)
            )
        elif outcome == "too_late" and until is not None:
            await self._follow_up(
                uow,
                case,
                kind,
                "notice",
                "survey.sms.review_too_late",
                until=self._day(case, until),
            )

    async def _clarify(self, uow: UnitOfWork, open_surveys: list[_Open], now: datetime) -> None:
        if len(open_surveys) > 1:
            await self._ask_which(uow, open_surveys, now)
            return
        only = open_surveys[0]
        if only.survey.clarified_at is not None:
            return  # one clarifying SMS per survey, no more
        only.survey.clarified_at = now
        t = self.catalog.for_language(only.case.language)
        options = survey_options(t, only.survey.scale)
        await self._follow_up(
            uow,
            only.case,
            f"clarify:{only.survey.id}",
            "clarify",
            "survey.sms.clarify",
            params={"ref": only.ref},
            ref=only.ref,
            options=options,
        )

    async def _ask_which(self, uow: UnitOfWork, open_surveys: list[_Open], now: datetime) -> None:
        """Never guess between cases: list their references, once per survey."""
        unasked = [s for s in open_surveys if s.survey.clarified_at is None]
        if not unasked:
            return
        for each in open_surveys:
            each.survey.clarified_at = each.survey.clarified_at or now
        refs = [s.ref for s in open_surveys]
        first = open_surveys[0]
        await self._follow_up(
            uow,
            first.case,
            f"which:{first.survey.id}:{now.isoformat()}",
            "notice",
            "survey.sms.which",
            refs="、".join(refs),
            first=refs[0],
        )

    async def _opt_out(
        self, uow: UnitOfWork, reply: SmsReply, phone_hash: str, now: datetime
    ) -> None:
        citizen = await uow.people.find_citizen(reply.phone)
        if citizen is not None and citizen.sms_opted_out_at is None:
            citizen.sms_opted_out_at = now
        for each in await self._surveys(uow, phone_hash, now, status="open"):
            await uow.events.append(
                each.case, "sms.opted_out", "citizen:sms", {"word": normalize(reply.text)[:10]}
            )
        log.info("SMS opt-out from %s recorded", reply.masked_phone)

    def _day(self, case: Case, moment: datetime) -> str:
        local = moment.astimezone(self.tz)
        return f"{local.month}月{local.day}日" if case.language != "en" else f"{local:%Y-%m-%d}"

    async def _follow_up(
        self,
        uow: UnitOfWork,
        case: Case,
        kind: str,
        template: str,
        text_key: str,
        params: dict[str, str] | None = None,
        **values: str,
    ) -> None:
        payload = {
            "template": template,
            "params": params or {},
            "text_key": text_key,
            "values": values,
        }
        await uow.notifications.add(
            f"citizen:sms:{case.code}:{kind}", "citizen", "sms_followup", case, payload
        )
