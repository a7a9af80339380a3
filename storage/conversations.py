"""Conversation stores: state, re-delivery memory and per-conversation locks, DB or Redis.

Both give the engine the same unit of work per turn. In the embedded store the state and the
dedupe record are rows in the turn's own transaction, guarded by a version column. In the Redis
store they are written right after the database commit, while the turn still holds the
conversation's Redis lock; case filing stays idempotent by form id, so a state write lost
between the two cannot file a matter twice.

Re-delivery memory has two parts with two lifetimes. That a message was handled is kept for the
dedupe window (`DEDUPE_WINDOW`, a day), so it is never handled twice. The replies it got are
kept only for the re-delivery window (`MINYI_REDELIVERY_SECONDS`, 15 minutes), long enough for
WeChat's retries (15 s) and a Telegram or SMS re-push; a re-delivery after that is recalled as
`Forgotten` and the engine says it was taken already. In Redis the marks are one small sorted
set per conversation, not a key per message: an idle conversation costs its state and that set.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from types import TracebackType
from typing import Any, NamedTuple, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import Table, bindparam, delete, func, literal_column, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from conversation.cases.deadlines import LegalDeadlines
from conversation.cases.repeats import RepeatRules
from conversation.commands import Command, Results
from conversation.messages import Inbound, Reply
from conversation.ports import CaseView, Conflict, Forgotten, Lookups, SimilarCase
from conversation.state import ConversationState

from .crypto import PiiCipher
from .db import Database
from .intake import CommandHandler, writes_once
from .keys import Keys
from .locks import LocalLocks
from .lookups import CaseLookups
from .models import Conversation, InboundDedupe, utcnow
from .prebuilt import Prebuilt
from .ratelimit import SenderLimited, SenderRate
from .scripts import Script
from .uow import Committed, OnConnection, Reading, UnitOfWork, raise_conflict


class Busy(Exception):
    """The conversation stayed locked by another turn for longer than we may wait."""


# How long a message is known as handled, and how long the replies it got are kept.
DEDUPE_WINDOW = timedelta(hours=24)
REDELIVERY_WINDOW = timedelta(minutes=15)

# A state's fields at their defaults are left out (`ConversationState.from_json` fills them in):
# most of a conversation's state is one flow and step and when it was last touched.
_DEFAULTS: dict[str, Any] = {
    "flow": "",
    "step": "",
    "data": {},
    "draft": None,
    "language": "zh",
    "source": "",
    "said": "",
    "risk_alerted": False,
    "staff_thread": None,
}


# Compact, UTF-8 as it is: made once (`json.dumps` with options builds an encoder every call).
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def state_json(state: ConversationState) -> str:
    """The state as stored: compact JSON without the fields at their defaults."""
    kept = {k: v for k, v in state.to_json().items() if k not in _DEFAULTS or v != _DEFAULTS[k]}
    return _to_json(kept)


def _seal_state(cipher: PiiCipher, state: ConversationState) -> bytes:
    return cipher.encrypt(state_json(state), "conversation")


def _open_state(cipher: PiiCipher, blob: bytes, version: int = 0) -> ConversationState:
    return ConversationState.from_json(json.loads(cipher.decrypt(blob, "conversation")), version)


def _seal_replies(cipher: PiiCipher, replies: Sequence[Reply]) -> bytes:
    return cipher.encrypt(_to_json([r.to_json() for r in replies]), "replies")


def _open_replies(cipher: PiiCipher, blob: bytes) -> list[Reply]:
    return [Reply.from_json(item) for item in json.loads(cipher.decrypt(blob, "replies"))]


class _Recalled(NamedTuple):
    """A message's dedupe record as read with the conversation's state."""

    replies: bytes
    expires_at: datetime


class StoreTurn:
    """One turn's unit of work: implements `conversation.ports.Turn`.

    The database is touched only when the turn needs it: in the Redis store most turns (a form
    step) touch only Redis. What a turn writes to the database runs on a Core connection in the
    turn's transaction (`Database.transaction()`): in the database store its state and dedupe
    record, and in either store the unit of work (`UnitOfWork`) of a turn that applies commands
    (a submit, a rating, a handoff…), joined to that same connection and transaction, so that
    all of it commits together or not at all. (In the Redis store on PostgreSQL a submit that
    writes one statement — the filing, atomic on its own — runs without the transaction: see
    `connection`.) The unit of work's ORM session is made only when
    a command uses one: a submit writes its rows prebuilt on the connection and needs none. A
    session, its BEGIN and COMMIT and the pool's return cost a form step more than its
    statements did (docs/wechat.md, "SQLite turns on a Core connection"), and a submit a tenth
    to a fifth of its CPU ("The submit without a session").
    """

    def __init__(self, store: ConversationStoreBase) -> None:
        self.store = store
        self._uow: UnitOfWork | None = None
        self._versions: dict[str, int] = {}
        # What the Redis store writes after the database commit.
        self._state: tuple[str, bytes] | None = None
        self._seen: tuple[str, bytes] | None = None
        # The turn's transaction (`Database.transaction()`) and its connection, while open;
        # in the database store, the message's dedupe record as the statement that loaded the
        # state read it (the id, and the row or None).
        self._transaction: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._connection: AsyncConnection | None = None
        self._recalled: tuple[str, _Recalled | None] | None = None
        self._committing = False
        # Statements committing one by one (`connection(reads_first=True)`) until `apply`
        # begins the transaction, and whether a command was applied.
        self._one_by_one = False
        self._applied = False

    async def uow(self, *, reads_first: bool = False) -> UnitOfWork:
        if self._uow is None:
            # Joined to the turn's transaction in either store: its session is made only if
            # a command uses one, and a submit (its rows written prebuilt on the connection)
            # runs on the connection alone.
            joined = await self.connection(reads_first=reads_first)
            uow = UnitOfWork(
                self.store.db,
                self.store.cipher,
                self.store.committed,
                self.store.tz,
                connection=joined,
            )
            await uow.__aenter__()
            self._uow = uow
        return self._uow

    async def connection(self, *, reads_first: bool = False) -> AsyncConnection:
        """The turn's connection in its transaction (`Database.transaction()`), opened on first
        use: the database store's statements and the unit of work run on it.

        `reads_first`, asked by a lookup before the turn writes (the repeat question's, on
        `1 提交`) and kept in the Redis store on PostgreSQL: the reads commit one by one, and
        `apply` begins the transaction — unless what it writes is one statement, atomic on its
        own (`writes_once`: a submit). BEGIN and COMMIT were two of a submit's six round trips,
        each a wait for a pass of a busy event loop (docs/wechat.md, seventh round)."""
        if self._connection is None:
            reads_first = (
                reads_first and not self.store.turn_transaction and self.store.db.is_postgres
            )
            transaction = self.store.db.transaction(reads_first=reads_first)
            connection = await transaction.__aenter__()
            self._transaction = transaction
            self._connection = connection
            self._one_by_one = reads_first
        return self._connection

    @property
    def lookups(self) -> Lookups:
        return _LazyLookups(self)

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        return await self.store._recall_in_turn(self, dedupe_key)

    async def load_state(self, key: str) -> ConversationState | None:
        return await self.store._load(self, key)

    async def apply(self, commands: Sequence[Command], inbound: Inbound) -> Results:
        uow = await self.uow()
        if self._one_by_one and (self._applied or not writes_once(commands)):
            assert self._connection is not None
            await self.store.db.begin_writes(self._connection)
            self._one_by_one = False
        self._applied = True
        results = await CommandHandler(uow, self.store.deadlines).apply(commands, inbound)
        await uow.flush()
        return results

    async def save_state(self, key: str, state: ConversationState) -> None:
        await self.store._save(self, key, state)

    async def remember(self, dedupe_key: str, replies: Sequence[Reply]) -> None:
        await self.store._remember(self, dedupe_key, replies)

    async def commit(self) -> None:
        if self._connection is None:  # the turn wrote nothing to the database
            await self.store._after_commit(self)
            return
        touched: frozenset[str] = frozenset()
        if self._uow is not None:
            # Joined to the turn's transaction: its commit only flushes (a failure is rolled
            # back by `close`), and the transaction commits below.
            await self._uow.commit()
            uow, self._uow = self._uow, None
            touched = frozenset(uow.touched)
            await uow.__aexit__(None, None, None)
        self._committing = True
        try:
            await self._connection.commit()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        self._committing = False
        if touched:  # the relay and the notifier wake only for queues this turn wrote
            self.store.committed(touched)
        await self.store._after_commit(self)

    async def __aenter__(self) -> StoreTurn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(exc)  # may turn an IntegrityError into Conflict

    async def close(self, exc: BaseException | None) -> None:
        """End the unit of work and the transaction if they were opened (rolled back unless
        committed)."""
        try:
            if self._uow is not None:
                uow, self._uow = self._uow, None
                await uow.__aexit__(
                    type(exc) if exc else None, exc, exc.__traceback__ if exc else None
                )
        finally:
            if self._transaction is not None:
                transaction, self._transaction = self._transaction, None
                self._connection = None
                await transaction.__aexit__(None, None, None)  # rolls back if not committed
        # A constraint or a serialization failure, or a connection lost before its COMMIT:
        # the turn runs again (lost during the COMMIT: not, it may have committed).
        raise_conflict(exc, committing=self._committing)


class _LazyLookups:
    """The case lookups, opening the turn's session only when a flow asks one."""

    def __init__(self, turn: StoreTurn) -> None:
        self.turn = turn

    async def cases_of(self, channel: str, sender: str, limit: int = 5) -> list[CaseView]:
        async with self._lookups() as lookups:
            return await lookups.cases_of(channel, sender, limit)

    async def case_of(self, channel: str, sender: str, code: str) -> CaseView | None:
        async with self._lookups() as lookups:
            return await lookups.case_of(channel, sender, code)

    async def ratable_cases(self, channel: str, sender: str) -> list[CaseView]:
        async with self._lookups() as lookups:
            return await lookups.ratable_cases(channel, sender)

    async def similar_open_case(
        self,
        channel: str,
        sender: str,
        kind: str,
        category: str,
        description: str,
        rules: RepeatRules,
        similarity: Callable[[str, str], float],
    ) -> SimilarCase | None:
        # Asked on `1 提交`, which files next: in the turn's unit of work, which the filing then
        # writes in (one connection for both, and one transaction when the filing needs one),
        # not on a connection of its own.
        lookups = CaseLookups(await self.turn.uow(reads_first=True))
        return await lookups.similar_open_case(
            channel, sender, kind, category, description, rules, similarity
        )

    @asynccontextmanager
    async def _lookups(self) -> AsyncIterator[CaseLookups]:
        """In the turn's transaction if it has one; otherwise (a Redis-store turn that only
        looks: 进度查询, a case code) outside any, rather than opening one to roll it back."""
        if self.turn._uow is not None:
            yield CaseLookups(self.turn._uow)
            return
        if self.turn.store.turn_transaction:
            # The database store: the turn's own connection, in its transaction (on SQLite a
            # second connection would wait for this one).
            yield CaseLookups(OnConnection(await self.turn.connection()))
            return
        async with Reading(self.turn.store.db, self.turn.store.cipher) as reading:
            yield CaseLookups(reading)


class ConversationStoreBase:
    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        tz: tzinfo,
        *,
        lifetime: timedelta = timedelta(hours=24),
        dedupe_ttl: timedelta = DEDUPE_WINDOW,
        redelivery: timedelta = REDELIVERY_WINDOW,
        committed: Committed | None = None,
        deadlines: LegalDeadlines | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        # Told which queues a turn wrote to (a filing's outbox event, an alert), after commit.
        self.committed: Committed = committed or (lambda touched: None)
        self.tz = tz
        # Filing sets the case's first deadlines with these (the office's stages from filing).
        self.deadlines = deadlines or LegalDeadlines(tz)
        self.lifetime = lifetime
        self.dedupe_ttl = dedupe_ttl
        # The replies are kept no longer than the message is known.
        self.redelivery = min(redelivery, dedupe_ttl)

    def lock(self, key: str, dedupe_key: str = "") -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        raise NotImplementedError

    # Whether the store's own statements (state, dedupe) run in the turn's transaction
    # (`Database.transaction()`, which a unit of work joins in either store), so that a turn
    # that only looks reads there too; otherwise it reads outside any (`Reading`).
    turn_transaction = False

    def turn(self) -> StoreTurn:
        """`async with store.turn() as turn:` one turn's unit of work."""
        return StoreTurn(self)

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        raise NotImplementedError

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        raise NotImplementedError

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        raise NotImplementedError

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        raise NotImplementedError

    async def _after_commit(self, turn: StoreTurn) -> None:
        return None


# A turn's statements in the database store: built once with bind parameters (building them
# anew on every turn, expressions and then their cache keys, was a tenth of a SQLite turn's
# CPU), on the tables rather than the mapped classes, and run prebuilt on the turn's connection
# (storage/prebuilt.py): SQLAlchemy's handling of a statement cost more than SQLite's work for
# it (~40 µs and a greenlet switch each), and nothing here needs an object.
_CONVERSATIONS = cast(Table, Conversation.__table__)
_DEDUPE = cast(Table, InboundDedupe.__table__)
_RECALL_ROW = Prebuilt(
    select(_DEDUPE.c.replies, _DEDUPE.c.expires_at).where(_DEDUPE.c.key == bindparam("key"))
)
_LOAD_ROW = Prebuilt(
    select(_CONVERSATIONS.c.state, _CONVERSATIONS.c.version, _CONVERSATIONS.c.expires_at).where(
        _CONVERSATIONS.c.key == bindparam("key")
    )
)
# The state and the message's dedupe record in one statement (a turn of a message with an id):
# a row for each that exists, told apart by `kind`.
_LOAD_AND_RECALL = Prebuilt(
    union_all(
        select(
            literal_column("'c'").label("kind"),
            _CONVERSATIONS.c.state.label("blob"),
            _CONVERSATIONS.c.version,
            _CONVERSATIONS.c.expires_at,
        ).where(_CONVERSATIONS.c.key == bindparam("key")),
        select(
            literal_column("'d'"), _DEDUPE.c.replies, literal_column("0"), _DEDUPE.c.expires_at
        ).where(_DEDUPE.c.key == bindparam("dedupe")),
    )
)
_BEGIN_ROW = Prebuilt(
    _CONVERSATIONS.insert().values(
        key=bindparam("key"),
        state=bindparam("state"),
        version=bindparam("version"),
        expires_at=bindparam("expires_at"),
    )
)
_SAVE_ROW = Prebuilt(
    _CONVERSATIONS.update()
    .where(_CONVERSATIONS.c.key == bindparam("k"), _CONVERSATIONS.c.version == bindparam("was"))
    .values(state=bindparam("sealed"), version=bindparam("now"), expires_at=bindparam("until"))
)
_ADVISORY_LOCK = Prebuilt(
    select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0)))
)


def _remembering(dialect: str) -> Any:
    """The message's replies, kept in one statement: a new record, or one in place of an
    expired record of the same id that lingers until the purge; a live one is left alone (the
    statement then writes no row)."""
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    new = upsert(_DEDUPE).values(
        key=bindparam("key"), replies=bindparam("replies"), expires_at=bindparam("until")
    )
    return new.on_conflict_do_update(
        index_elements=[_DEDUPE.c.key],
        set_={"replies": new.excluded.replies, "expires_at": new.excluded.expires_at},
        where=_DEDUPE.c.expires_at <= bindparam("now"),
    )


_REMEMBER_ROW = {dialect: Prebuilt(_remembering(dialect)) for dialect in ("postgresql", "sqlite")}


class DatabaseConversationStore(ConversationStoreBase):
    """The embedded default: everything in the database, one transaction per turn."""

    turn_transaction = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locks = LocalLocks()
        # The message each held conversation is answering: its turn's load reads the message's
        # dedupe record in the same statement as the state.
        self._answering: dict[str, str] = {}

    @asynccontextmanager
    async def lock(self, key: str, dedupe_key: str = "") -> AsyncIterator[None]:
        # In-process only; other processes sharing the database are caught by the version column.
        async with self._locks.hold(key):
            if not dedupe_key:
                yield
                return
            self._answering[key] = dedupe_key
            try:
                yield
            finally:
                self._answering.pop(key, None)

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        return None  # asked inside the turn instead, under the lock: one transaction, not two

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        recalled, turn._recalled = turn._recalled, None
        row: Any
        if recalled is not None and recalled[0] == dedupe_key:
            row = recalled[1]  # read with the state
        else:
            found = await _RECALL_ROW.rows(await turn.connection(), {"key": dedupe_key})
            row = _Recalled(*found[0]) if found else None
        now = utcnow()
        if row is None or row.expires_at <= now:
            return None
        # Handled at expires_at - dedupe_ttl; the purge blanks the replies past the window.
        if not row.replies or row.expires_at - self.dedupe_ttl + self.redelivery <= now:
            return Forgotten()
        return _open_replies(self.cipher, row.replies)

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        if self.db.is_postgres:
            # Processes sharing PostgreSQL without Redis: a transaction-scoped advisory lock makes
            # one conversation's turns wait for each other (SQLite's BEGIN IMMEDIATE does this).
            await _ADVISORY_LOCK.rows(await turn.connection(), {"key": key})
        dedupe_key = self._answering.get(key, "")
        state: Sequence[Any] | None = None
        if dedupe_key:
            seen = None
            # Rows by position: kind, blob, version, expires_at.
            for found in await _LOAD_AND_RECALL.rows(
                await turn.connection(), {"key": key, "dedupe": dedupe_key}
            ):
                if found[0] == "c":
                    state = found[1:]
                else:
                    seen = found
            turn._recalled = (dedupe_key, _Recalled(seen[1], seen[3]) if seen else None)
        else:
            rows = await _LOAD_ROW.rows(await turn.connection(), {"key": key})
            state = rows[0] if rows else None
        turn._versions[key] = state[1] if state else 0
        if state is None or state[2] <= utcnow():
            return None
        return _open_state(self.cipher, state[0], state[1])

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        version = turn._versions.get(key, 0)
        sealed = _seal_state(self.cipher, state)
        expires = utcnow() + self.lifetime
        if version == 0:
            try:
                await _BEGIN_ROW.written(
                    await turn.connection(),
                    {"key": key, "state": sealed, "version": 1, "expires_at": expires},
                )
            except IntegrityError as exc:  # another process began it meanwhile
                raise Conflict(f"conversation {key} began under this turn") from exc
            return
        written = await _SAVE_ROW.written(
            await turn.connection(),
            {"k": key, "was": version, "sealed": sealed, "now": version + 1, "until": expires},
        )
        if written != 1:
            raise Conflict(f"conversation {key} changed under this turn")

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        now = utcnow()
        kept = await _REMEMBER_ROW[self.db.engine.dialect.name].written(
            await turn.connection(),
            {
                "key": dedupe_key,
                "replies": _seal_replies(self.cipher, replies),
                "until": now + self.dedupe_ttl,
                "now": now,
            },
        )
        if kept != 1:
            # A live record: another process answered this message first; the engine's retry
            # finds that answer.
            raise Conflict(f"message {dedupe_key} answered under this turn")


# Take the conversation's lock and, in the same round trip, read what the turn will need: the
# state, and for a message with an id the replies kept for it or else whether it was handled.
# A citizen's turn is first counted against the sender's rate (storage/ratelimit.py `_HIT` does
# the same for other counters); over it, the lock is not taken and the count is returned.
# KEYS: lock, state, the message's replies, the conversation's handled marks, its turns in this
# window, the count its message got on a first delivery.
# ARGV: token, lock ms, the message's mark ('' = none), dedupe window in seconds, rate window ms
# ('' = not counted), the message's id for the count ('' = none), the rate's limit.
# A mark's score is the second it was handled (Redis's clock): live while score + window >= now,
# which keeps it up to a second longer than the window, never shorter.
_ACQUIRE = """
if ARGV[5] ~= '' then
  local n = false
  if ARGV[6] ~= '' then n = redis.call('GET', KEYS[6]) end
  if n then
    n = tonumber(n)
  else
    n = redis.call('INCR', KEYS[5])
    if n == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[5]) end
    if ARGV[6] ~= '' then redis.call('SET', KEYS[6], n, 'PX', ARGV[5]) end
  end
  if n > tonumber(ARGV[7]) then return {2, n} end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local replies, handled = false, 0
  if ARGV[3] ~= '' then
    replies = redis.call('GET', KEYS[3])
    if not replies then
      local at = redis.call('ZSCORE', KEYS[4], ARGV[3])
      if at and tonumber(at) + tonumber(ARGV[4]) >= tonumber(redis.call('TIME')[1]) then
        handled = 1
      end
    end
  end
  return {1, redis.call('GET', KEYS[2]), replies, handled}
end
return {0}
"""
# The same read without the lock (a turn that runs again after a conflict).
_RECALL = """
local replies = redis.call('GET', KEYS[1])
if replies then return {replies, 0} end
local at = redis.call('ZSCORE', KEYS[2], ARGV[1])
if at and tonumber(at) + tonumber(ARGV[2]) >= tonumber(redis.call('TIME')[1]) then
  return {false, 1}
end
return {false, 0}
"""
# After the database commit: the new state, the replies given (for the re-delivery window) and
# the message's mark (for the dedupe window, dropping marks past it), and the lock let go.
# KEYS: state, lock, the message's replies, the conversation's handled marks.
# ARGV: state, state seconds, replies, re-delivery ms, mark ('' = none), dedupe window in
# seconds, the same in ms, token.
_FINISH = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - tonumber(ARGV[6])))
  redis.call('ZADD', KEYS[4], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
if redis.call('GET', KEYS[2]) == ARGV[8] then redis.call('DEL', KEYS[2]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# While the turn runs: keep the lock, if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


# The turn that `RedisConversationStore.counting` asked to count (a turn's own context: every
# delivery's task has its own, so concurrent turns never see each other's).
_counting: ContextVar[SenderRate | None] = ContextVar("minyi_sender_rate", default=None)


def _mark(dedupe_key: str) -> bytes:
    """A message's 8-byte mark in its conversation's set: a hash of its id, fixed in size
    whatever the channel's ids look like (two ids of one conversation sharing one mark within
    a day: about one chance in 10^15 for a thousand messages)."""
    return hashlib.blake2b(dedupe_key.encode(), digest_size=8).digest()


@dataclass
class _Held:
    """A lock this process holds, with what was read when taking it (each used once)."""

    token: str
    dedupe_key: str
    mark: bytes  # the message's (b"" without an id)
    state: bytes | None
    replies: bytes | None
    handled: bool
    state_read: bool = False
    seen_read: bool = False
    released: bool = False


class RedisConversationStore(ConversationStoreBase):
    """Production: state, dedupe and locks in Redis, shared by every web process.

    A turn costs two Redis round trips: one script counts it against the sender's rate (when
    asked, see `counting`), takes the lock and reads the state and what is remembered of the
    message; another, after the database commit, writes the new state, the replies and the
    message's mark and lets the lock go. A conversation's keys: its state (`conv:`), the marks
    of the messages it handled within the dedupe window (`handled:`, one sorted set of 8-byte
    hashes scored by the second), the replies of each message within the re-delivery window
    (`seen:`, one key per message, gone after minutes), its turns in the rate's window
    (`turns:`, `turns-once:`) and, during a turn, its lock (`lock:`).

    The lock expires after `lock_ttl` unless its turn is still running, which renews it every
    third of that; so a holder that died (a killed process, a Redis write lost in an outage)
    frees the conversation within `lock_ttl`. That is shorter than `lock_wait`, so a turn
    waiting behind a dead holder gets the conversation instead of failing; a 30-second lock
    (as it was) kept such a citizen answered with apologies for half a minute.
    """

    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        tz: tzinfo,
        redis: Redis,
        keys: Keys,
        *,
        lock_ttl: float = 6.0,
        lock_wait: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(db, cipher, tz, **kwargs)
        self.redis = redis
        self.keys = keys
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self._acquire = Script(redis, _ACQUIRE)
        self._recall = Script(redis, _RECALL)
        self._finish = Script(redis, _FINISH)
        self._release = Script(redis, _RELEASE)
        self._renew = Script(redis, _RENEW)
        self._held: dict[str, _Held] = {}
        # A lock's token tells its holder's turns apart from any other: this process's random
        # part and a count (a random token per turn cost a system call).
        self._tokens = secrets.token_hex(8)
        self._taken = itertools.count()

    @contextmanager
    def counting(self, rate: SenderRate) -> Iterator[None]:
        """Within the block, taking `rate.conversation`'s lock also counts the turn against the
        sender's rate, in the same script; over it, the lock raises `SenderLimited` and the turn
        does not run. (The inbound pipeline, bot/app/wiring.py `limited`, wraps the engine in
        this; the engine and its port know nothing of rates.)"""
        token = _counting.set(rate)
        try:
            yield
        finally:
            _counting.reset(token)

    @asynccontextmanager
    async def lock(self, key: str, dedupe_key: str = "") -> AsyncIterator[None]:
        token = f"{self._tokens}{next(self._taken)}"
        lock_key, state_key = self.keys.lock(key), self.keys.conversation(key)
        # Unused keys are placeholders in the same slot.
        keys = [
            lock_key,
            state_key,
            self.keys.seen(dedupe_key) if dedupe_key else state_key,
            self.keys.handled(key) if dedupe_key else state_key,
            state_key,
            state_key,
        ]
        mark = _mark(dedupe_key) if dedupe_key else b""
        window = self.dedupe_ttl.total_seconds()
        args: list[str | int | float | bytes] = [token, int(self.lock_ttl * 1000), mark, window]
        rate = _counting.get()
        slot = 0
        if rate is not None and rate.conversation == key:
            slot = int(time.time() // rate.window)
            keys[4] = self.keys.turns(key, slot)
            if rate.message_id:
                keys[5] = self.keys.turns_once(key, rate.message_id)
            args += [rate.window * 1000, rate.message_id, rate.limit]
        else:
            args += ["", "", 0]
        deadline = time.monotonic() + self.lock_wait
        while True:
            got = await self._acquire(keys=keys, args=args)
            if int(got[0]) == 1:
                break
            if int(got[0]) == 2 and rate is not None:
                raise SenderLimited((slot + 1) * rate.window - time.time())
            args[4:] = ["", "", 0]  # counted once: waiting for the lock is not another turn
            if time.monotonic() > deadline:
                raise Busy(f"conversation {key} is busy")
            await asyncio.sleep(0.01)
        held = _Held(token, dedupe_key, mark, got[1], got[2], int(got[3]) == 1)
        self._held[key] = held
        # Most turns take milliseconds: the renewal only starts for one still running.
        renewal: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            self.lock_ttl / 3,
            lambda: renewal.append(asyncio.ensure_future(self._keep(lock_key, held))),
        )
        try:
            yield
        finally:
            timer.cancel()
            for task in renewal:
                task.cancel()
            self._held.pop(key, None)
            if not held.released:  # a turn that failed: let go (a no-op if it expired meanwhile)
                await self._release(keys=[lock_key], args=[token])

    async def _keep(self, lock_key: str, held: _Held) -> None:
        """Renew the lock every third of its TTL while the turn holds it."""
        ttl = int(self.lock_ttl * 1000)
        while not held.released:
            try:
                if not await self._renew(keys=[lock_key], args=[held.token, ttl]):
                    return  # let go already, or lost: nothing to keep
            except RedisError:
                pass  # Redis is away; the turn will find out when it writes
            await asyncio.sleep(self.lock_ttl / 3)

    async def recall(self, dedupe_key: str) -> list[Reply] | None:
        held = next((h for h in self._held.values() if h.dedupe_key == dedupe_key), None)
        if held is not None and not held.seen_read:
            held.seen_read = True
            blob, handled = held.replies, held.handled
        else:
            key = ":".join(dedupe_key.split(":", 2)[:2])  # channel:sender, as Keys.seen
            got = await self._recall(
                keys=[self.keys.seen(dedupe_key), self.keys.handled(key)],
                args=[_mark(dedupe_key), self.dedupe_ttl.total_seconds()],
            )
            blob, handled = got[0], int(got[1]) == 1
        if blob:
            return _open_replies(self.cipher, blob)
        return Forgotten() if handled else None

    async def _recall_in_turn(self, turn: StoreTurn, dedupe_key: str) -> list[Reply] | None:
        return None  # the engine already asked under the Redis lock, which every process shares

    async def _load(self, turn: StoreTurn, key: str) -> ConversationState | None:
        held = self._held.get(key)
        if held is not None and not held.state_read:
            held.state_read = True
            blob = held.state
        else:
            blob = cast(bytes | None, await self.redis.get(self.keys.conversation(key)))
        return _open_state(self.cipher, blob) if blob else None

    async def _save(self, turn: StoreTurn, key: str, state: ConversationState) -> None:
        turn._state = (key, _seal_state(self.cipher, state))

    async def _remember(self, turn: StoreTurn, dedupe_key: str, replies: Sequence[Reply]) -> None:
        turn._seen = (dedupe_key, _seal_replies(self.cipher, replies))

    async def _after_commit(self, turn: StoreTurn) -> None:
        if turn._state is None:
            return
        key, state = turn._state
        dedupe_key, seen = turn._seen or ("", b"")
        held = self._held.get(key)
        token = held.token if held is not None else ""
        if held is not None and held.dedupe_key == dedupe_key:
            mark = held.mark
        else:
            mark = _mark(dedupe_key) if dedupe_key else b""
        state_key = self.keys.conversation(key)
        keys = [
            state_key,
            self.keys.lock(key),
            self.keys.seen(dedupe_key) if dedupe_key else state_key,
            self.keys.handled(key) if dedupe_key else state_key,
        ]
        window = self.dedupe_ttl.total_seconds()
        args: list[str | int | float | bytes] = [
            state,
            max(1, int(self.lifetime.total_seconds())),
            seen,
            max(1, int(self.redelivery.total_seconds() * 1000)),
            mark,
            window,
            max(1, int(window * 1000)),
            token,
        ]
        await self._finish(keys=keys, args=args)
        if held is not None:
            held.released = True
        turn._state = turn._seen = None


async def purge_expired(
    db: Database,
    *,
    dedupe_ttl: timedelta = DEDUPE_WINDOW,
    redelivery: timedelta = REDELIVERY_WINDOW,
) -> int:
    """Drop conversation and dedupe rows past their expiry (the embedded store's TTL), and blank
    the replies of messages past the re-delivery window (their rows stay, so they are never
    handled twice); pass the store's windows."""
    now = utcnow()
    forgotten_before = now + dedupe_ttl - min(redelivery, dedupe_ttl)
    async with db.session() as session, session.begin():
        a = await session.execute(delete(Conversation).where(Conversation.expires_at <= now))
        b = await session.execute(delete(InboundDedupe).where(InboundDedupe.expires_at <= now))
        c = await session.execute(
            update(InboundDedupe)
            .where(InboundDedupe.expires_at <= forgotten_before, InboundDedupe.replies != b"")
            .values(replies=b"")
        )
    counts: list[int] = [r.rowcount or 0 for r in (a, b, c)]  # type: ignore[attr-defined]
    return sum(counts)
