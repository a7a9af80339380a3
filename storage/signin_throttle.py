"""Sign-in throttling: failures counted per username and per client address, then a lockout.

Kept in the database (not Redis) on every backend: sign-ins come at human speed, the count is
shared by every process either way, a lockout survives a Redis restart, and there is one
implementation to trust. Unknown usernames are counted and locked like real ones, so a lockout
tells an attacker nothing about which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import SignInThrottle
from .people import insert_ignoring_duplicates


@dataclass(frozen=True)
class ThrottleRule:
    failures: int  # this many failures within `window` ...
    window: timedelta
    lockout: timedelta  # ... lock the key this long


# A person mistyping gets five tries; one address guessing across many names gets twenty.
USER_RULE = ThrottleRule(5, timedelta(minutes=15), timedelta(minutes=15))
ADDRESS_RULE = ThrottleRule(20, timedelta(minutes=15), timedelta(minutes=15))


def user_key(username: str) -> str:
    return f"user:{username.strip().lower()[:150]}"


def throttle_keys(username: str, address: str) -> dict[str, ThrottleRule]:
    return {user_key(username): USER_RULE, f"addr:{address[:150]}": ADDRESS_RULE}


async def locked_until(session: AsyncSession, keys: list[str], now: datetime) -> datetime | None:
    """The latest lockout still running on any of the keys."""
    rows = await session.scalars(
        select(SignInThrottle.locked_until).where(
            SignInThrottle.key.in_(keys), SignInThrottle.locked_until > now
        )
    )
    return max((moment for moment in rows if moment is not None), default=None)


async def record_failure(
    session: AsyncSession, key: str, rule: ThrottleRule, now: datetime
) -> None:
    await insert_ignoring_duplicates(
        session, SignInThrottle, {"key": key, "failures": 0, "window_started_at": now}, ["key"]
    )
    row = await session.get(SignInThrottle, key, with_for_update=True, populate_existing=True)
    assert row is not None
    if now - row.window_started_at >= rule.window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if row.failures >= rule.failures:
        row.locked_until = now + rule.lockout
        row.failures, row.window_started_at = 0, now


async def clear(session: AsyncSession, key: str) -> None:
    row = await session.get(SignInThrottle, key)
    if row is not None:
        await session.delete(row)
