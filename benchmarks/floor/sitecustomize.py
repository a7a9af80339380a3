"""Floors under a Minyi turn, for `benchmarks/wechat_traffic.py --floor` (never for a real server).

Python imports `sitecustomize` at start-up from the path; the benchmark puts this folder first
on the server's PYTHONPATH and names the floor in BENCH_FLOOR:

- `shell`: `Engine.handle` answers at once with a fixed reply, so a turn costs what is around
  the conversation: aiohttp, the WeChat envelope, the callback, the passive reply.
- `storage`: the engine's step answers at once instead, so a turn also takes the conversation's
  lock (counting the rate), loads its state, checks the message's dedupe, saves the state,
  remembers the reply and commits; no flow runs and no case is read or filed.

What a full turn costs above `storage` is the steps themselves: the flows and their SQL. The
checked walk's citizen (openids starting with BENCH_FLOOR_CHECKER) is served in full, so the
benchmark still checks that a real server answers.
"""

from __future__ import annotations

import os

FLOOR = os.environ.get("BENCH_FLOOR", "")
CHECKER = os.environ.get("BENCH_FLOOR_CHECKER", "")

if FLOOR:
    from conversation import engine
    from conversation.flows.base import Outcome
    from conversation.messages import Reply

    ANSWER = Reply("收到，谢谢。")

    def served_in_full(sender: str) -> bool:
        return bool(CHECKER) and sender.startswith(CHECKER)

    if FLOOR == "shell":
        full_handle = engine.Engine.handle

        async def handle(self, inbound):
            if served_in_full(inbound.sender):
                return await full_handle(self, inbound)
            return [ANSWER]

        engine.Engine.handle = handle
    elif FLOOR == "storage":
        full_step = engine.Engine._step

        async def step(self, ctx, idle):
            if served_in_full(ctx.inbound.sender):
                return await full_step(self, ctx, idle)
            return Outcome(replies=[ANSWER])

        engine.Engine._step = step
    else:
        raise SystemExit(f"BENCH_FLOOR={FLOOR!r}: use shell or storage")
