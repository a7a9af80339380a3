"""How a citizen is reached outside a turn: their own channel first, then any channel that can
reach their mobile — as the channels themselves declare (`Channel.reach`), so nothing here knows
a channel by name.

A route that fails for a passing reason stops the chain (the whole notice waits and is retried);
one that cannot reach the person now (unsubscribed, blocked, outside WeChat's 48 hours, no
template) lets the next route try.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from channels.base import Channel, DeliveryFailed, Notice, Recipient, RecipientUnreachable, Route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One route tried: what the timeline records of it."""

    route: str
    channel: str
    ok: bool
    error: str = ""
    message_id: str | None = None
    retry_after: float | None = None
    unreachable: bool = False
    lasting: bool = False  # unreachable until the person acts (they blocked the bot)


class CitizenReach:
    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self.channels = channels

    def routes(
        self, recipient: Recipient, *, chat_only: bool = False, fallback: bool = True
    ) -> list[Route]:
        """The routes to try in order. `chat_only` keeps the own channel's conversational
        routes (a survey question must land where it can be answered); `fallback` adds the
        channels that reach anyone by phone (SMS), in registry order."""
        own = self.channels.get(recipient.channel)
        routes = list(own.reach(recipient)) if own is not None else []
        if chat_only:
            routes = [route for route in routes if route.conversational]
        if fallback:
            routes += [
                route
                for channel in self.channels.values()
                if channel is not own
                for route in channel.reach(recipient)
            ]
        return routes

    async def reach(self, routes: list[Route], notice: Notice) -> list[Attempt]:
        """Try the routes in order until one delivers or one fails for a passing reason."""
        attempts: list[Attempt] = []
        for route in routes:
            attempt = await _try(route, notice)
            attempts.append(attempt)
            if attempt.ok or not attempt.unreachable:
                break  # delivered, or a passing failure: the whole chain waits and retries
        return attempts

    def title(self, channel: str) -> str:
        """The channel's name as staff read it (微信, 短信, …)."""
        found = self.channels.get(channel)
        return found.title if found is not None else channel


async def _try(route: Route, notice: Notice) -> Attempt:
    try:
        message_id = await route.deliver(notice)
    except RecipientUnreachable as exc:
        return Attempt(
            route.name, route.channel, False, exc.reason, unreachable=True, lasting=exc.lasting
        )
    except DeliveryFailed as exc:
        return Attempt(route.name, route.channel, False, exc.reason, retry_after=exc.retry_after)
    except Exception as exc:  # a bug or an unexpected answer must not lose the notification
        log.exception("notification route %s failed unexpectedly", route.name)
        return Attempt(route.name, route.channel, False, f"{type(exc).__name__}: {exc}")
    return Attempt(route.name, route.channel, True, message_id=message_id)
