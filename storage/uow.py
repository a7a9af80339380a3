"""The unit of work: one session, its repositories, and a commit that is never implicit."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import Any, cast

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from conversation.ports import Conflict

from .cases import CaseReads, Cases
from .crypto import PiiCipher
from .db import Database
from .notifications import Notifications
from .outbox import Outbox
from .people import People
from .timeline import Timeline
from .times import iso

# Told, after a commit, which queues it wrote to ("outbox", "notifications"): their workers wake.
Committed = Callable[[frozenset[str]], None]


def _nobody(touched: frozenset[str]) -> None:
    return None


class UnitOfWork:
    """`async with UnitOfWork(db, cipher) as uow:` … `await uow.commit()`; anything else rolls back.

    `committed` hears which queues a successful commit wrote to, so that the relay and the
    notifier run at once for work that is there, and sleep when a turn wrote nothing for them.

    Given a `connection` already in a transaction (`Database.transaction()`, a conversation
    turn's), the session joins that transaction instead of opening its own: `commit()` then
    only flushes, and the connection's owner commits (and tells `committed` of `touched`);
    a rollback or an error still rolls the whole transaction back.
    """

    def __init__(
        self,
        db: Database,
        cipher: PiiCipher,
        committed: Committed = _nobody,
        tz: tzinfo = UTC,
        *,
        connection: AsyncConnection | None = None,
    ) -> None:
        self.db = db
        self.connection = connection
        self.cipher = cipher
        self.committed = committed
        self.tz = tz  # the office's: every time written for other systems is in it
        self.touched: set[str] = set()

    async def __aenter__(self) -> UnitOfWork:
        self._held: AbstractAsyncContextManager[AsyncSession] | None = None
        self._on_demand: _SessionOnDemand | None = None
        session: AsyncSession
        if self.connection is not None:
            # Joined: the session is made only when something uses it (an ORM object added,
            # a query through it). A submit writes its rows prebuilt on the connection and
            # needs none: making one, beginning it, flushing and closing it cost a submit more
            # than its statements (docs/wechat.md, "The submit without a session").
            self._on_demand = _SessionOnDemand(self._joined_session)
            session = cast(AsyncSession, self._on_demand)
        else:
            self._held = self.db.session()
            session = self._session = await self._held.__aenter__()
            await session.begin()
        self.cases = Cases(session, self.cipher, connection=self.connection)
        self.events = Timeline(session)
        self.outbox = Outbox(session, self.cipher, self.touched, self.tz)
        self.people = People(session, self.cipher)
        self.notifications = Notifications(session, self.touched)
        self._committed = False
        self._committing = False
        return self

    def _joined_session(self) -> AsyncSession:
        # Joined: the session's rollback rolls the connection's transaction back
        # (SQLAlchemy's "conservative_savepoint" on a connection in a transaction), its
        # commit does not commit it, and closing it leaves the connection to its owner. It
        # begins on first use (autobegin), in the connection's transaction.
        self._session = self.db.sessions(bind=self.connection)
        return self._session

    @property
    def session(self) -> AsyncSession:
        """The unit of work's ORM session (joined to a turn's connection: made on first use)."""
        if self._on_demand is not None:
            return self._on_demand.made or self._on_demand.make()
        return self._session

    @property
    def session_opened(self) -> bool:
        """Whether the session exists (always, unless joined and nothing has used it)."""
        return self._on_demand is None or self._on_demand.made is not None

    def iso(self, moment: datetime) -> str:
        """A moment as Minyi writes it for other systems (storage/times.py)."""
        return iso(moment, self.tz)

    async def commit(self) -> None:
        # Joined, the commit only flushes: a connection lost then left nothing committed.
        self._committing = self.connection is None
        if not self.session_opened:
            # Joined, and nothing in a session to flush: the connection's owner commits.
            self._committed = True
            return
        try:
            await self.session.commit()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        self._committed = True
        if self.touched and self.connection is None:
            self.committed(frozenset(self.touched))

    async def flush(self) -> None:
        if not self.session_opened:
            return
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed and self.session_opened:
                await self.session.rollback()
        finally:
            if self._held is not None:
                await self._held.__aexit__(None, None, None)
            elif self.session_opened:
                # Closed directly: `async with` would close it in a task of its own, shielded
                # from cancellation (two more loop iterations a turn), for a close that does no
                # I/O (the connection's owner ends the transaction and returns the connection).
                await self.session.close()
        raise_conflict(exc, committing=self._committing)


class _SessionOnDemand:
    """Stands for a joined unit of work's session in its repositories until one uses it: the
    first attribute asked of it makes the session (`made`), and every later one is the
    session's. `Cases` asks `made` to read on the connection alone while there is none."""

    __slots__ = ("_make", "made")

    def __init__(self, make: Callable[[], AsyncSession]) -> None:
        self._make = make
        self.made: AsyncSession | None = None

    def make(self) -> AsyncSession:
        if self.made is None:
            self.made = self._make()
        return self.made

    def __getattr__(self, name: str) -> Any:  # only names not found on this object
        return getattr(self.make(), name)


def raise_conflict(exc: BaseException | None, *, committing: bool) -> None:
    """Raise `Conflict` for a failed unit of work that may simply run again: a constraint or a
    serialization failure, or a connection found dead before its COMMIT."""
    if isinstance(exc, IntegrityError):
        raise Conflict(str(exc.orig)) from exc
    if isinstance(exc, OperationalError) and _is_serialization_failure(exc):
        raise Conflict(str(exc.orig)) from exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated and not committing:
        # The pooled connection was dead (the database restarted, a proxy dropped it); the
        # pool now replaces it. Nothing was committed, so the work runs again. A connection
        # lost during COMMIT is not retried: the commit may have happened.
        raise Conflict(f"database connection lost: {exc.orig}") from exc


def _is_serialization_failure(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "deadlock" in text or "could not serialize" in text


class Reading:
    """Case reads outside any transaction (`Database.reading`): for a turn that only looks,
    one round trip a query instead of BEGIN, the query and ROLLBACK. Its `cases` answer on the
    connection alone, with no ORM session around it."""

    def __init__(self, db: Database, cipher: PiiCipher) -> None:
        self.db = db
        self.cipher = cipher

    async def __aenter__(self) -> Reading:
        self._held = self.db.read_connection()
        self.cases = _Outside(await self._held.__aenter__())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._held.__aexit__(exc_type, exc, tb)
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise Conflict(f"database connection lost: {exc.orig}") from exc  # read again


class OnConnection(Reading):
    """Case reads on a connection already open (a conversation turn's, before or without a
    unit of work): in its transaction, with no ORM session. Not a context manager: the
    connection's owner ends it."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.cases = _Outside(connection)


class _Outside(CaseReads):
    """The case reads on a given connection (a `Reading`'s, an `OnConnection`'s)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def _connection(self) -> AsyncConnection:
        return self.connection


@dataclass(frozen=True)
class Units:
    """Makes units of work: what a service is given instead of the database and the key."""

    db: Database
    cipher: PiiCipher
    committed: Committed = _nobody

    tz: tzinfo = UTC

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.cipher, self.committed, self.tz)
