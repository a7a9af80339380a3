"""What a request for staff carries out of Minyi (timeline, outbox, stream, events API)."""

from __future__ import annotations

from typing import Any

# Channels whose sender is a credential's keyed hash (the web chat's session cookie): staff reach
# the chat through the alert, which keeps it; nobody outside needs even the hash.
UNEXPORTED_SENDERS = frozenset({"webchat"})


def exported(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("channel") in UNEXPORTED_SENDERS:
        return {k: v for k, v in data.items() if k != "sender"}
    return data
