"""The fuzz tests, long: thousands of random and mutated requests per webhook and API operation.

    python benchmarks/fuzz_webhooks.py [--examples 5000]

Runs tests/test_fuzz_webhooks.py and tests/test_api_schema.py with MINYI_FUZZ_EXAMPLES set:
random and mutated WeChat pushes (signed, plaintext-compatible and safe mode), conversations of
signed pushes whose field values are fuzzed (Unicode, lengths, numbers), Telegram updates with and
without the secret, SMS pushes of every provider with and without their authentication, back-office
event bodies against real cases checked against the law's matrix, and schemathesis against
/api/v1's OpenAPI document on SQLite and PostgreSQL (MINYI_TEST_POSTGRES_URL).
Every request must get less than a 5xx, an unauthenticated one must leave every table as it
was, and the server must still answer /healthz after each. Prints the time per test; exits
non-zero when any property fails (hypothesis prints the smallest failing example).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per test")
    args = parser.parse_args()
    env = {**os.environ, "MINYI_FUZZ_EXAMPLES": str(args.examples), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--durations=0",
            "--timeout=0",  # the suite's 120 s per test is for the small example counts
            "tests/test_fuzz_webhooks.py",
            "tests/test_api_schema.py",
        ],
        cwd=ROOT,
        env=env,
    )
    print(f"{args.examples} examples per test, {time.perf_counter() - started:.0f} s in all")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
