"""Every Redis key name Minyi uses, in one place (each under the configured prefix)."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "minyi:") -> None:
        self.prefix = prefix

    def conversation(self, key: str) -> str:
        return f"{self.prefix}conv:{key}"

    def seen(self, dedupe_key: str) -> str:
        return f"{self.prefix}seen:{dedupe_key}"

    def lock(self, key: str) -> str:
        return f"{self.prefix}lock:{key}"

    def shared(self, name: str) -> str:
        """Small shared values such as the WeChat access token."""
        return f"{self.prefix}kv:{name}"
