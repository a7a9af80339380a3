"""A pytest plugin for tools/test_matrix.py: records which backends each test really opened.

Loaded only by that script (`-p tests.backend_census`): every `storage.db.Database` and every
Redis client made while a test runs is noted against the test, and each xdist worker writes its
notes to MINYI_CENSUS_DIR as JSON. Tests that start the app in a subprocess (the CLI tests) are
not seen here; the script reports them as touching no storage.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from storage.db import Database

SEEN: defaultdict[str, set[str]] = defaultdict(set)


def _current() -> str | None:
    running = os.environ.get("PYTEST_CURRENT_TEST", "")
    return running.rsplit(" (", 1)[0] if running else None


def pytest_configure(config: pytest.Config) -> None:
    database_init, redis_init = Database.__init__, aioredis.Redis.__init__

    def noted_database(self: Database, url: str, *args: Any, **kwargs: Any) -> None:
        database_init(self, url, *args, **kwargs)
        test = _current()
        if test:
            SEEN[test].add("postgres" if self.is_postgres else "sqlite")

    def noted_redis(self: aioredis.Redis, *args: Any, **kwargs: Any) -> None:
        redis_init(self, *args, **kwargs)
        test = _current()
        if test:
            SEEN[test].add("redis")

    Database.__init__ = noted_database  # type: ignore[method-assign]
    aioredis.Redis.__init__ = noted_redis  # type: ignore[method-assign]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        SEEN.setdefault(report.nodeid, set())  # ran, even if it opened nothing


def pytest_sessionfinish(session: pytest.Session) -> None:
    folder = Path(os.environ["MINYI_CENSUS_DIR"])
    notes = {test: sorted(backends) for test, backends in SEEN.items()}
    (folder / f"{uuid.uuid4().hex}.json").write_text(json.dumps(notes), "utf-8")
