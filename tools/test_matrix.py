"""Which tests run on which backends, counted by running the suite (not by hand).

    python tools/test_matrix.py [pytest arguments]

Runs the suite with the tests.backend_census plugin, which notes the databases (SQLite,
PostgreSQL) and Redis clients each test really opened, then prints docs/testing.md's table: for each
combination of backends, how many test functions ran on exactly those (a function parametrised
over backends counts once, under the set of all its runs) and how many test runs that was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One run's backends, as the table names them.
LABELS = {
    (): "none",
    ("sqlite",): "SQLite",
    ("postgres",): "PostgreSQL",
    ("postgres", "redis"): "PostgreSQL + Redis",
    ("redis",): "Redis",
    ("postgres", "sqlite"): "SQLite and PostgreSQL in one run",
    ("redis", "sqlite"): "SQLite + Redis",
}


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MINYI_CENSUS_DIR": folder, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.backend_census"]
        result = subprocess.run([*command, *sys.argv[1:]], cwd=ROOT, env=env)
        # Each worker (and the xdist controller, which sees every test but opens nothing)
        # wrote its own notes: a test's backends are the union of what all of them saw.
        runs: dict[str, set[str]] = {}
        for notes in Path(folder).glob("*.json"):
            for test, backends in json.loads(notes.read_text("utf-8")).items():
                runs.setdefault(test, set()).update(backends)
    by_function: dict[str, set[str]] = {}
    for test, backends in runs.items():
        label = LABELS.get(tuple(sorted(backends)), " + ".join(sorted(backends)))
        by_function.setdefault(_function(test), set()).add(label)
    combo = {function: _combination(labels) for function, labels in by_function.items()}
    functions = Counter(combo.values())
    test_runs = Counter(combo[_function(test)] for test in runs)
    print("\n| backends a test function runs on | functions | runs |\n|---|---:|---:|")
    for key, count in functions.most_common():
        print(f"| {key} | {count} | {test_runs[key]} |")
    print(f"| all | {len(by_function)} | {len(runs)} |")
    return result.returncode


def _function(test: str) -> str:
    return re.sub(r"\[.*\]$", "", test)


def _combination(labels: set[str]) -> str:
    order = ["none", "SQLite", "PostgreSQL", "PostgreSQL + Redis"]
    ranked = sorted(labels, key=lambda x: (order.index(x) if x in order else 9, x))
    return " · ".join("no storage" if x == "none" else x for x in ranked)


if __name__ == "__main__":
    sys.exit(main())
