"""Telegram's flood limits as delays: how long to wait before the next message to a chat.

Telegram documents roughly 1 message/s per chat (short bursts tolerated), 20/min in a group and
30/s for the whole bot (telegram.constants.FloodLimit), and answers 429 beyond them. Each limit
is a GCRA schedule (a token bucket that stores one time instead of a count): a message may go
once the schedule allows it, and reserving a slot pushes the schedule on by one interval.

The limiter only computes delays; the sender sleeps. It is per process: with several processes
each keeps its own schedule and Telegram's 429 (honoured by the sender) is the shared backstop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from telegram.constants import FloodLimit

# A chat left alone this long is forgotten (its schedule is back to "send at once" anyway).
_FORGET_AFTER = 60.0
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Rate:
    """One message every `interval` seconds, with up to `burst` sent back to back."""

    interval: float
    burst: int = 1

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


# A turn often answers with two or three messages: let them go together, then 1/s.
PRIVATE_CHAT = Rate(1.0 / FloodLimit.MESSAGES_PER_SECOND_PER_CHAT, burst=3)
GROUP_CHAT = Rate(60.0 / FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP, burst=1)
WHOLE_BOT = Rate(1.0 / FloodLimit.MESSAGES_PER_SECOND, burst=FloodLimit.MESSAGES_PER_SECOND)


@dataclass
class _Schedule:
    rate: Rate
    next_at: float = 0.0  # GCRA's "theoretical arrival time"
    paused_until: float = 0.0  # set by a 429: nothing goes before this

    def reserve(self, now: float) -> float:
        """Book the next slot; the seconds to wait for it."""
        arrival = max(self.next_at, now)
        self.next_at = arrival + self.rate.interval
        return max(0.0, arrival - self.rate.tolerance - now, self.paused_until - now)


@dataclass
class FloodLimiter:
    """Delays that keep one bot within Telegram's per-chat, per-group and overall limits."""

    private: Rate = PRIVATE_CHAT
    group: Rate = GROUP_CHAT
    overall: Rate = WHOLE_BOT
    _bot: _Schedule = field(init=False)
    _chats: dict[str, _Schedule] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._bot = _Schedule(self.overall)

    def reserve(self, chat_id: int | str, now: float) -> float:
        """Seconds to wait before sending to `chat_id`; the slot is booked when this returns.

        No await happens between reading and booking, so concurrent senders on one event loop
        get distinct slots.
        """
        chat = self._chat(str(chat_id), now)
        return max(chat.reserve(now), self._bot.reserve(now))

    def pause(self, chat_id: int | str, now: float, seconds: float) -> None:
        """Telegram answered 429 for this chat: hold every message to it for `seconds`."""
        chat = self._chat(str(chat_id), now)
        chat.paused_until = max(chat.paused_until, now + seconds)

    def _chat(self, chat_id: str, now: float) -> _Schedule:
        schedule = self._chats.get(chat_id)
        if schedule is None:
            if len(self._chats) >= _MAX_REMEMBERED:
                self._forget_idle(now)
            # Telegram's group and channel ids are negative, people's are positive.
            rate = self.group if chat_id.startswith("-") else self.private
            schedule = self._chats[chat_id] = _Schedule(rate)
        return schedule

    def _forget_idle(self, now: float) -> None:
        idle = [
            chat
            for chat, s in self._chats.items()
            if max(s.next_at, s.paused_until) + _FORGET_AFTER < now
        ]
        for chat in idle:
            del self._chats[chat]
