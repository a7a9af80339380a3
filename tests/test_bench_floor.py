"""The traffic benchmark's floors (benchmarks/floor): what `wechat_traffic.py --floor` measures
must be what it says — the engine cut down for everyone but the checked walk's citizen, with the
storage still written under `storage` and not under `shell`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: `sitecustomize` only takes effect at start-up.
PROBE = """
import asyncio, base64, json, sys
sys.path.insert(0, "benchmarks")
from throwaway import database
from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from conversation.messages import Inbound

async def main():
    async with database("sqlite") as url:
        settings = Settings(database_url=url, pii_key=base64.urlsafe_b64encode(b"k" * 32).decode())
        async with open_minyi(settings) as runtime:
            out = {}
            for sender in ("wx1", "ocheck1"):
                replies = await runtime.engine.handle(
                    Inbound(channel="wechat", sender=sender, text="我要反映", message_id=sender)
                )
                async with runtime.engine.store.turn() as turn:
                    state = await turn.load_state(f"wechat:{sender}")
                texts = " / ".join(reply.text for reply in replies)
                out[sender] = {"text": texts, "saved": state is not None}
            print(json.dumps(out, ensure_ascii=False))

asyncio.run(main())
"""


def probe(floor: str) -> dict[str, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINYI_")}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks" / "floor"), str(ROOT)]),
        "BENCH_FLOOR": floor,
        "BENCH_FLOOR_CHECKER": "ocheck",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("floor", "saved"), [("shell", False), ("storage", True)])
def test_a_floor_cuts_the_turn_for_all_but_the_checker(floor: str, saved: bool) -> None:
    seen = probe(floor)
    assert seen["wx1"] == {"text": "收到，谢谢。", "saved": saved}
    # The checked walk's citizen gets the real answer, and their conversation is kept.
    assert "类别" in str(seen["ocheck1"]["text"])
    assert seen["ocheck1"]["saved"] is True


def test_an_unknown_floor_stops_the_server_from_starting() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "benchmarks" / "floor"), BENCH_FLOOR="nothing")
    done = subprocess.run(
        [sys.executable, "-c", "pass"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "use shell or storage" in done.stderr
