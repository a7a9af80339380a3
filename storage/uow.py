"""The unit of work: one session, its repositories, and a commit that is never implicit."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType

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
        if self.connection is not None:
            # Joined: the session's rollback rolls the connection's transaction back
            # (SQLAlchemy's "conservative_savepoint" on a connection in a transaction), its
            # commit does not commit it, and closing it leaves the connection to its owner.
            self.session = self.db.sessions(bind=self.connection)
        else:
            self._held = self.db.session()
            self.session = await self._held.__aenter__()
        await self.session.begin()
        self.cases = Cases(self.session, self.cipher)
        self.events = Timeline(self.session)
        self.outbox = Outbox(self.session, self.cipher, self.touched, self.tz)
        self.people = People(self.session, self.cipher)
        self.notifications = Notifications(self.session, self.touched)
        self._committed = False
        self._committing = False
        return self

    def iso(self, moment: datetime) -> str:
        """A moment as Minyi writes it for other systems (storage/times.py)."""
        return iso(moment, self.tz)

    async def commit(self) -> None:
        # Joined, the commit only flushes: a connection lost then left nothing committed.
        self._committing = self.connection is None
        try:
            await self.session.commit()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        self._committed = True
        if self.touched and self.connection is None:
            self.committed(frozenset(self.touched))

    async def flush(self) -> None:
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
            if not self._committed:
                await self.session.rollback()
        finally:
            if self._held is not None:
                await self._held.__aexit__(None, None, None)
            else:
                # Closed directly: `async with` would close it in a task of its own, shielded
                # from cancellation (two more loop iterations a turn), for a close that does no
                # I/O (the connection's owner ends the transaction and returns the connection).
                await self.session.close()
        raise_conflict(exc, committing=self._committing)


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
