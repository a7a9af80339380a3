"""Messages of one citizen arriving together are processed one at a time: no step lost or doubled."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import func, select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from conversation.messages import Inbound, Media
from storage.models import Attachment, Case

from .conftest import Citizen, joined


async def at_photo_step(citizen: Citizen) -> None:
    await citizen.say("1")
    await citizen.say("1")
    await citizen.say("物业不给修漏水的屋顶，已经三个月了")
    await citizen.say("幸福小区")


def photo(n: int, sender: str = "citizen-1") -> Inbound:
    return Inbound(
        channel="webchat",
        sender=sender,
        kind="image",
        media=(Media("image", f"p{n}"),),
        message_id=f"photo-{n}",
    )


async def finish(citizen: Citizen) -> str:
    await citizen.say("完成")
    await citizen.say("周八")
    await citizen.say("13500135000")
    return await citizen.say("1")


async def test_concurrent_messages_of_one_citizen_are_all_taken(citizen: Citizen) -> None:
    await at_photo_step(citizen)
    replies = await asyncio.gather(*(citizen.send(photo(n)) for n in range(6)))
    counts = sorted(int(re.search(r"第(\d+)张", joined(r)).group(1)) for r in replies)  # type: ignore[union-attr]
    assert counts == [1, 2, 3, 4, 5, 6]  # each photo saw the one before it
    await finish(citizen)
    async with citizen.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 6


async def test_concurrent_redeliveries_give_one_step_and_identical_replies(
    citizen: Citizen,
) -> None:
    await at_photo_step(citizen)
    replies = await asyncio.gather(*(citizen.send(photo(1)) for _ in range(4)))
    assert all(r == replies[0] for r in replies)
    assert "第1张" in joined(replies[0])
    assert "第2张" in joined(await citizen.send(photo(2)))


async def test_a_submit_redelivered_after_its_replies_went_is_not_filed_again(
    settings: Settings,
) -> None:
    """The replies are kept for the re-delivery window only; the message stays handled for the
    day, so a late re-delivery of the submit files nothing and is told it was taken already."""
    async with open_minyi(settings.replace(redelivery_seconds=1)) as runtime:
        citizen = Citizen(runtime)
        await at_photo_step(citizen)
        await citizen.say("完成")
        await citizen.say("周八")
        await citizen.say("13500135000")
        first = await citizen.say("1", message_id="submit")
        assert "XF" in first
        assert await citizen.say("1", message_id="submit") == first  # within the window
        await asyncio.sleep(1.3)
        late = await citizen.say("1", message_id="submit")
        assert "不会重复办理" in late and "菜单" in late and "XF" not in late
        async with runtime.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_two_processes_on_one_database_lose_nothing(settings: Settings) -> None:
    """Two runtimes share the database (and Redis when configured), like two web processes."""
    async with open_minyi(settings) as one, open_minyi(settings) as two:
        citizen = Citizen(one)
        await at_photo_step(citizen)
        runtimes: tuple[Minyi, ...] = (one, two)
        replies = await asyncio.gather(*(runtimes[n % 2].handle(photo(n)) for n in range(8)))
        counts = sorted(int(re.search(r"第(\d+)张", joined(r)).group(1)) for r in replies)  # type: ignore[union-attr]
        assert counts == list(range(1, 9))
        submits = await asyncio.gather(
            *(
                r.handle(
                    Inbound(channel="webchat", sender="citizen-1", text="完成", message_id="done")
                )
                for r in runtimes
            )
        )
        assert submits[0] == submits[1]
        await citizen.say("周八")
        await citizen.say("13500135000")
        final = await asyncio.gather(
            *(
                r.handle(
                    Inbound(channel="webchat", sender="citizen-1", text="1", message_id=f"s{i}")
                )
                for i, r in enumerate(runtimes)
            )
        )
        async with one.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Case)) == 1
            assert await session.scalar(select(func.count()).select_from(Attachment)) == 8
        assert any("XF" in joined(f) for f in final)


async def test_a_burst_of_new_citizens_waits_for_redis_connections_instead_of_failing(
    shared_settings: Settings,
) -> None:
    """Hundreds of first messages at once (a morning's rush on a hotline): with Redis, more
    turns are in flight than the connection pool holds; they queue for a connection, none is
    refused with "Too many connections" (which the citizen would meet as "busy, send again")."""
    async with open_minyi(shared_settings) as minyi:
        burst = [
            minyi.handle(Inbound(channel="webchat", sender=f"rush-{n:04d}", text="你好"))
            for n in range(300)
        ]
        answers = await asyncio.gather(*burst, return_exceptions=True)
    failures = [a for a in answers if isinstance(a, BaseException)]
    assert not failures, failures[:3]
    assert all(answers), "every citizen got an answer"
