"""What each step of the WeChat walk costs the server's CPU, through the real engine and storage.

    python benchmarks/walk_steps.py [--citizens 300] [--backends postgres+redis,sqlite]

Citizens walk `wechat_traffic.WALK` (我要反映 … 1 to submit, 菜单, 进度查询) one message at a
time, so each step's process CPU time and SQL statements are its own (no HTTP, no crypto: those
are the echo's share in `wechat_traffic.py`). With `--together N`, N citizens take each step at
once, as under load (Redis commands share a write, a wake-up serves several turns), and a
step's figures are still its own. The first five citizens (or groups) warm connections and
caches and are not counted. Use it to see which step a change made cheaper; the traffic
benchmark says what that is worth under load.

    python benchmarks/walk_steps.py --citizens 480 --together 16
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_turns import backend
from sqlalchemy import event
from sqlalchemy.engine import Engine
from wechat_traffic import WALK

from bot.app.wiring import open_minyi
from conversation.messages import Inbound

WARM = 5


async def run(name: str, citizens: int, together: int) -> tuple[list[float], list[float]]:
    cpu = [0.0] * len(WALK)
    statements = [0] * len(WALK)
    counting: list[int | None] = [None]
    groups = -(-citizens // together)  # whole groups: every counted step is `together` turns
    turns = groups * together

    def count(*_: object) -> None:
        if counting[0] is not None:
            statements[counting[0]] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        async with backend(name) as settings, open_minyi(settings) as runtime:
            for group in range(groups + WARM):
                senders = range(group * together, (group + 1) * together)
                for step, text in enumerate(WALK):
                    inbounds = [
                        Inbound(
                            channel="wechat",
                            sender=f"walker{n}",
                            text=text.format(n=n),
                            message_id=f"{n}-{step}",
                        )
                        for n in senders
                    ]
                    counted = group >= WARM
                    counting[0] = step if counted else None
                    started = time.process_time()
                    if together == 1:
                        await runtime.engine.handle(inbounds[0])
                    else:
                        await asyncio.gather(*(runtime.engine.handle(i) for i in inbounds))
                    if counted:
                        cpu[step] += time.process_time() - started
                    counting[0] = None
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return [c / turns * 1000 for c in cpu], [s / turns for s in statements]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=300)
    parser.add_argument("--backends", default="postgres+redis,sqlite")
    parser.add_argument("--together", type=int, default=1, help="citizens taking a step at once")
    args = parser.parse_args()
    names = args.backends.split(",")
    results = {name: await run(name, args.citizens, args.together) for name in names}
    at_once = "one message at a time" if args.together == 1 else f"{args.together} at once"
    print(f"{args.citizens} citizens, {at_once}; CPU ms (SQL statements) per step")
    print(f"{'step':<14}" + "".join(f"{name:>22}" for name in names))
    for step, text in enumerate(WALK):
        cells = "".join(
            f"{results[name][0][step]:>14.2f} ({results[name][1][step]:>4.1f})" for name in names
        )
        print(f"{text.format(n=0)[:6]:<14}{cells}")
    means = "".join(f"{sum(results[name][0]) / len(WALK):>22.2f}" for name in names)
    print(f"{'mean':<14}{means}")


if __name__ == "__main__":
    asyncio.run(main())
