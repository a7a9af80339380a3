"""Staff accounts and their desk sessions: argon2id passwords, revocable server-side sessions."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import StaffAccount, StaffSession, utcnow

ROLES = ("staff", "leader", "admin")
USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 10
# argon2id with the library's defaults (RFC 9106 "second recommended": 64 MiB, 3 passes).
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class StaffError(ValueError):
    """A staff account request that cannot be done; the message says why."""


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise StaffError("the password must have at most 1024 characters")
    return password


async def hash_password(password: str) -> str:
    # Memory-hard on purpose (tens of milliseconds): off the event loop.
    return await asyncio.to_thread(_hasher.hash, check_password(password))


async def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, the same work is done and False given."""

    def verify() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)  # a working day, then sign in again
    touch_every: timedelta = timedelta(minutes=1)  # last_seen is written at most this often


class StaffAccounts:
    """Accounts and sessions within one unit of work's session; the caller commits."""

    def __init__(self, session: AsyncSession, limits: SessionLimits | None = None) -> None:
        self.session = session
        self.limits = limits or SessionLimits()

    async def by_username(self, username: str) -> StaffAccount | None:
        return await self.session.scalar(
            select(StaffAccount).where(StaffAccount.username == username.strip().lower())
        )

    async def all(self) -> list[StaffAccount]:
        return list(
            await self.session.scalars(select(StaffAccount).order_by(StaffAccount.username))
        )

    async def departments(self) -> list[str]:
        """Department codes staff belong to: where cases can be assigned so someone sees them."""
        rows = await self.session.scalars(
            select(StaffAccount.department)
            .where(StaffAccount.department != "", StaffAccount.disabled_at.is_(None))
            .distinct()
            .order_by(StaffAccount.department)
        )
        return list(rows)

    async def add(
        self,
        username: str,
        display_name: str,
        role: str,
        password_hash: str,
        department: str = "",
        wecom_userid: str = "",
    ) -> StaffAccount:
        username = username.strip().lower()
        if not USERNAME_RE.fullmatch(username):
            raise StaffError(
                "the username must be 2-64 of a-z 0-9 . _ - and start with a letter or digit"
            )
        if role not in ROLES:
            raise StaffError(f"the role must be one of {', '.join(ROLES)}")
        display_name = display_name.strip()
        if not display_name or len(display_name) > 100:
            raise StaffError("the display name must have 1-100 characters")
        if len(department) > 100 or len(wecom_userid) > 64:
            raise StaffError("the department (100) or WeCom userid (64) is too long")
        if await self.by_username(username) is not None:
            raise StaffError(f"the username {username} is taken")
        account = StaffAccount(
            username=username,
            display_name=display_name,
            role=role,
            department=department.strip(),
            wecom_userid=wecom_userid.strip() or None,
            password_hash=password_hash,
        )
        self.session.add(account)
        return account

    async def set_password(self, account: StaffAccount, password_hash: str) -> None:
        account.password_hash = password_hash
        account.password_changed_at = utcnow()
        await self.end_sessions(account)

    async def disable(self, account: StaffAccount) -> None:
        account.disabled_at = account.disabled_at or utcnow()
        await self.end_sessions(account)

    # -- sessions -------------------------------------------------------------------------------

    async def start_session(self, account_id: int, now: datetime) -> str:
        """A fresh session (never one the browser brought: no fixation); returns the cookie value."""
        token = secrets.token_urlsafe(32)
        row = StaffSession(
            token_hash=token_hash(token),
            account_id=account_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.limits.absolute,
        )
        self.session.add(row)
        return token

    async def resume(self, token: str, now: datetime) -> tuple[StaffSession, StaffAccount] | None:
        """The live session behind a cookie and its enabled account, touched; None otherwise."""
        found = (
            await self.session.execute(
                select(StaffSession, StaffAccount)
                .join(StaffAccount, StaffSession.account_id == StaffAccount.id)
                .where(StaffSession.token_hash == token_hash(token))
            )
        ).first()
        if found is None:
            return None
        row, account = found
        idle_end = row.last_seen_at + self.limits.idle
        if account.disabled_at is not None or now >= row.expires_at or now >= idle_end:
            await self.session.delete(row)
            return None
        if now - row.last_seen_at >= self.limits.touch_every:
            row.last_seen_at = now
        return row, account

    async def end_session(self, token: str) -> None:
        await self.session.execute(
            delete(StaffSession).where(StaffSession.token_hash == token_hash(token))
        )

    async def end_sessions(self, account: StaffAccount) -> None:
        await self.session.execute(
            delete(StaffSession).where(StaffSession.account_id == account.id)
        )

    async def sweep(self, now: datetime) -> None:
        """Forget sessions past their absolute limit (idle ones go when next presented)."""
        await self.session.execute(delete(StaffSession).where(StaffSession.expires_at <= now))
