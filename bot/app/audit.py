"""`minyi audit verify [CODE…]`: every case's timeline checked against its hash chain."""

from __future__ import annotations

import sys
from typing import TextIO

from storage.audit import check_cases, count_cases
from storage.uow import Units

BAR = 30


async def verify(units: Units, codes: list[str], out: TextIO = sys.stdout) -> int:
    """0 when every chain is whole; 1 when one is broken or a named case is unknown."""
    total = len(codes) if codes else await count_cases(units)
    done = broken = 0
    async for result in check_cases(units, codes or None):
        done += 1
        if result.check is None:
            broken += 1
            out.write(f"\n{result.code}: no such case\n")
        elif not result.check.ok:
            broken += 1
            reason = f"event {result.check.broken_at} {result.check.reason}"
            out.write(f"\n{result.code}: BROKEN at {reason}\n")
        filled = BAR * done // total if total else BAR
        out.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {done:,}/{total:,} checked")
        out.flush()
    out.write(f"\n{done - broken:,} of {done:,} cases verified; {broken:,} broken\n")
    return 1 if broken else 0
