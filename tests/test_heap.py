"""The start-up heap is frozen in the serving processes (bot/app/heap.py)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import cli
from bot.app.heap import freeze_startup_heap, freeze_when_started
from bot.app.settings import Settings


def test_freezing_keeps_what_lives_and_collects_what_is_dead() -> None:
    class Cycle:
        other: Any = None

    a, b = Cycle(), Cycle()
    a.other, b.other = b, a
    dead = weakref.ref(a)
    kept = Cycle()
    alive = weakref.ref(kept)
    del a, b  # garbage in a cycle, which only a collection frees
    try:
        assert freeze_startup_heap() == gc.get_freeze_count() > 0
        # The cycle was collected before the freeze, not frozen with the living.
        assert dead() is None and alive() is kept
    finally:
        gc.unfreeze()


def test_minyi_serve_freezes_once_every_startup_has_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[web.Application] = []
    monkeypatch.setattr(cli.web, "run_app", lambda app, **_: served.append(app))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db")
    cli.run_server(settings, "127.0.0.1", 0, workers=False)
    [app] = served
    assert app.on_startup[-1] is freeze_when_started
