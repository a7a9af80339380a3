"""`minyi chat`: the real engine in a terminal, as a citizen would meet it."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Sequence
from typing import TextIO

from conversation.messages import Inbound, Reply

from .base import Handler


def render(replies: Sequence[Reply]) -> str:
    return "\n\n".join(reply.as_plain_text() for reply in replies)


async def chat(
    handle: Handler, user: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> None:
    """Read lines until end of input; `/quit` leaves. Each line is one message of the citizen."""
    loop = asyncio.get_running_loop()
    first = await handle(Inbound(channel="console", sender=user, kind="event", event="subscribe"))
    stdout.write(render(first) + "\n")
    while True:
        stdout.write("> ")
        stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line or line.strip() == "/quit":
            return
        if not line.strip():
            continue
        inbound = Inbound(
            channel="console", sender=user, text=line.rstrip("\n"), message_id=uuid.uuid4().hex
        )
        stdout.write(render(await handle(inbound)) + "\n")
