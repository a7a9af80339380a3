"""The channels' shared cache (values with expiry, first-seen checks, locks) on every backend."""

from __future__ import annotations

import asyncio

from bot.app.wiring import Minyi


async def test_values_expire(runtime: Minyi) -> None:
    shared = runtime.shared
    assert await shared.get("token") is None
    await shared.set("token", "abc", ttl=60)
    assert await shared.get("token") == "abc"
    await shared.set("token", "def", ttl=60)
    assert await shared.get("token") == "def"
    await shared.set("short", "x", ttl=0.05)
    await asyncio.sleep(0.1)
    assert await shared.get("short") is None


async def test_add_is_true_only_for_the_first(runtime: Minyi) -> None:
    shared = runtime.shared
    results = await asyncio.gather(*(shared.add("update:42", "1", ttl=60) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    await shared.add("gone", "1", ttl=0.05)
    await asyncio.sleep(0.1)
    assert await shared.add("gone", "1", ttl=60)  # expired: first again


async def test_count_counts_every_caller_once_and_starts_again_after_its_time(
    runtime: Minyi,
) -> None:
    shared = runtime.shared
    counts = await asyncio.gather(*(shared.count("paced:user", ttl=60) for _ in range(6)))
    assert sorted(counts) == [1, 2, 3, 4, 5, 6]
    await shared.count("brief", ttl=0.05)
    await asyncio.sleep(0.1)
    assert await shared.count("brief", ttl=60) == 1  # expired: counting starts over


async def test_lock_lets_one_holder_in_at_a_time(runtime: Minyi) -> None:
    shared = runtime.shared
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        async with shared.lock("refresh", seconds=5):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(5)))
    assert most == 1
