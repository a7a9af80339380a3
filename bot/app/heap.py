"""The objects start-up leaves for the life of a process, kept out of the garbage collector's way.

A serving process starts with some 230,000 objects that live as long as it does: jieba's
dictionary and word tags, cpca's divisions, the office's catalog, the modules. Python's full
collection walks every one of them each time, and under load full collections come every few
seconds: measured in one SMS rating run, 0.71 s of its 3.01 s of CPU (docs/sms.md, "Sixth
round"). `gc.freeze()` once start-up is done moves them to the permanent generation, which
collections skip. Garbage made before is collected first, so nothing dead is kept; what is
frozen is still freed by reference counting when its last reference goes, it is only no
longer searched for cycles.
"""

from __future__ import annotations

import gc
import logging

from aiohttp import web

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%d objects from start-up kept out of the garbage collector", frozen)
    return frozen


async def freeze_when_started(app: web.Application) -> None:
    """`on_startup`, appended last: after the runtime and every sub-application started."""
    freeze_startup_heap()
