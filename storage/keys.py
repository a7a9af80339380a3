"""Every Redis key name Minyi uses, in one place (each under the configured prefix).

A conversation's keys (state, lock, handled marks, remembered replies, turns counted against
the sender's rate) share a hash tag, `{channel:sender}`, so the scripts that touch them together
also run on Redis Cluster.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "minyi:") -> None:
        self.prefix = prefix

    def conversation(self, key: str) -> str:
        return f"{self.prefix}conv:{{{key}}}"

    def lock(self, key: str) -> str:
        return f"{self.prefix}lock:{{{key}}}"

    def seen(self, dedupe_key: str) -> str:
        """The replies one message got, kept for the re-delivery window. `dedupe_key` is
        `channel:sender:message id`; the first two are the conversation."""
        channel, sender, message = dedupe_key.split(":", 2)
        return f"{self.prefix}seen:{{{channel}:{sender}}}:{message}"

    def handled(self, key: str) -> str:
        """The marks of the messages a conversation handled within the dedupe window."""
        return f"{self.prefix}handled:{{{key}}}"

    def rate(self, key: str, slot: int) -> str:
        """A rate-limit counter for one window (`key` is a sender's keyed hash or an address)."""
        return f"{self.prefix}rate:{{{key}}}:{slot}"

    def rate_once(self, key: str, message: str) -> str:
        """The count a message got on its first delivery (same hash tag as its counter)."""
        return f"{self.prefix}rate-once:{{{key}}}:{message}"

    def turns(self, key: str, slot: int) -> str:
        """A conversation's turns in one rate-limit window (MINYI_RATE_SENDER): counted by the
        script that takes its lock, so it carries the conversation's hash tag, and names no one
        the conversation's own keys do not already name."""
        return f"{self.prefix}turns:{{{key}}}:{slot}"

    def turns_once(self, key: str, message: str) -> str:
        """The count a message of the conversation got on its first delivery."""
        return f"{self.prefix}turns-once:{{{key}}}:{message}"

    def shared(self, name: str) -> str:
        """Small shared values such as the WeChat access token."""
        return f"{self.prefix}kv:{name}"

    def pending(self, channel: str) -> str:
        """Deliveries answered before their replies went out (storage/pending.py)."""
        return f"{self.prefix}pending:{{{channel}}}"

    def alive(self, channel: str, owner: str) -> str:
        """A process's liveness for its pending deliveries (same hash tag as `pending`)."""
        return f"{self.prefix}alive:{{{channel}}}:{owner}"

    def live(self, topic: str = "") -> str:
        """Pub/sub channels of live updates (`live:desk`, `live:chat:…`)."""
        return f"{self.prefix}live:{topic}"
