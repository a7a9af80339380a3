"""The webhook fuzz tests, long: thousands of random and mutated requests per webhook.

    python benchmarks/fuzz_webhooks.py [--examples 5000]

Runs tests/test_fuzz_webhooks.py with MINYI_FUZZ_EXAMPLES set: random and mutated WeChat pushes
(signed, plaintext-compatible and safe mode), Telegram updates with and without the secret,
SMS pushes of every provider with and without their authentication, and back-office API bodies.
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
            "tests/test_fuzz_webhooks.py",
        ],
        cwd=ROOT,
        env=env,
    )
    print(f"{args.examples} examples per test, {time.perf_counter() - started:.0f} s in all")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
