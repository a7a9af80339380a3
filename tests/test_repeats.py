"""重复信访: the similarity measured on labelled pairs, and the repeat watch linking a person's
repeated matter to the first one and raising the third filing (提级 / 包案)."""

from __future__ import annotations

import csv
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app.settings import Settings
from bot.app.wiring import Minyi, open_minyi
from bot.backoffice import repeat_watch
from conversation.cases.repeats import RepeatRules
from conversation.office import load_office
from conversation.similarity import similarity
from storage.models import Case, Notification, utcnow
from storage.uow import UnitOfWork

from .conftest import Citizen

PAIRS = Path(__file__).parent / "data" / "repeat_pairs.csv"
RULES = load_office().repeats


def test_the_similarity_finds_repeats_on_the_labelled_pairs() -> None:
    """Precision and recall at the bundled office's threshold, on 246 hand-written pairs
    (tests/data/repeat_matters.py: 30 matters, each written three ways, and 15 other troubles
    at the same place as one of them)."""
    with PAIRS.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 200
    similarity("预热", "预热")  # jieba's dictionary loads once per process
    started = time.perf_counter()
    scored = [(similarity(r["earlier"], r["later"]), r["same"] == "1") for r in rows]
    per_pair = (time.perf_counter() - started) / len(rows)
    found = [same for score, same in scored if score >= RULES.similar_at]
    true_positives = sum(found)
    precision = true_positives / len(found)
    recall = true_positives / sum(same for _, same in scored)
    print(f"repeats: precision {precision:.3f}, recall {recall:.3f}, {per_pair * 1000:.2f} ms/pair")
    assert precision >= 0.85 and recall >= 0.95
    assert per_pair < 0.01


async def file(
    runtime: Minyi, sender: str, description: str, phone: str = "13800138000", asked: bool = False
) -> str:
    """Filed through the chat; `asked`: the chat asks whether it is the open matter again
    (flows/forms.py), and the citizen says it is a new one, so the watch is what links it."""
    citizen = Citizen(runtime, sender=sender)
    for answer in ("1", "4", description, "XX区幸福路12号幸福小区东门", "跳过", "张三", phone):
        await citizen.say(answer)
    receipt = await citizen.say("1")
    assert ("同一件事吗" in receipt) == asked, receipt
    if asked:
        receipt = await citizen.say("2")
    return receipt.split("编号是 ")[1].split("，")[0]


async def scan(runtime: Minyi) -> int:
    return await repeat_watch.scan(
        lambda: UnitOfWork(runtime.db, runtime.cipher),
        runtime.office.repeats,
        runtime.office.escalation,
    )


async def cases(runtime: Minyi) -> dict[str, Case]:
    async with runtime.db.session() as session:
        return {c.code: c for c in await session.scalars(select(Case).order_by(Case.id))}


async def test_one_run_compares_every_waiting_case_a_batch_to_a_transaction(
    database_settings: Settings,
) -> None:
    """A busy day files more cases between two runs than one batch holds: one run compares
    them all, each batch in a transaction of its own (on SQLite, turns get the connection in
    between)."""
    async with open_minyi(database_settings) as runtime:
        first = await file(
            runtime, "r1", "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"
        )
        for n, matter in enumerate(
            (
                "菜市场门口的下水道堵了，污水流到路上，气味很大。",
                "楼上邻居装修，每天早上七点就开始打钻，噪音很大。",
                "公交站的站牌被车撞歪了，随时可能倒下来砸到人。",
            )
        ):
            await file(runtime, f"s{n}", matter, phone=f"1390013900{n}")
        second = await file(
            runtime, "r1", "上次反映过的小区门口路灯还是不亮，晚上太黑了。", asked=True
        )
        transactions: list[UnitOfWork] = []

        def units() -> UnitOfWork:
            transactions.append(UnitOfWork(runtime.db, runtime.cipher))
            return transactions[-1]

        office = runtime.office
        assert await repeat_watch.scan(units, office.repeats, office.escalation, batch=2) == 1
        assert len(transactions) == 3  # 2 + 2 + 1
        rows = await cases(runtime)
        assert all(case.repeat_checked_at is not None for case in rows.values())
        assert rows[second].repeat_of == rows[first].id


async def test_a_repeated_matter_is_linked_and_the_third_raised(
    database_settings: Settings,
) -> None:
    async with open_minyi(database_settings) as runtime:
        first = await file(
            runtime, "r1", "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"
        )
        assert await scan(runtime) == 0  # the first filing repeats nothing
        other = await file(runtime, "r1", "建设路和光明路路口的红绿灯坏了，车辆乱行很危险。")
        # Another person (another mobile, another chat) with the same matter: not theirs.
        stranger = await file(runtime, "r9", "小区门口的路灯坏了一个多月还没修。", "13900139000")
        second = await file(
            runtime, "r1", "上次反映过的小区门口路灯还是不亮，晚上太黑了。", asked=True
        )
        # From another chat, by the same mobile: the same person.
        third = await file(runtime, "r1-wechat", "再次反映：小区门口的路灯坏了很久，请尽快修好。")
        assert await scan(runtime) == 2
        assert await scan(runtime) == 0  # each case is compared once
        rows = await cases(runtime)
        ids = {code: case.id for code, case in rows.items()}
        assert (rows[second].repeat_of, rows[second].repeat_level) == (ids[first], 2)
        assert (rows[third].repeat_of, rows[third].repeat_level) == (ids[first], 3)
        for code in (first, other, stranger):
            assert rows[code].repeat_of is None, code
        # When the matter came back, on each earlier filing (一次性化解 reads it).
        assert rows[first].refiled_at == rows[second].created_at
        assert rows[second].refiled_at == rows[third].created_at
        assert rows[third].refiled_at is None and rows[other].refiled_at is None
        assert [c.level for c in (rows[second], rows[third])] == [0, 3]  # 提级: the top level
        async with UnitOfWork(runtime.db, runtime.cipher) as uow:
            events = await uow.events.events(rows[third])
            linked = next(e.data for e in events if e.type == "linked")
            raised = next(e.data for e in events if e.type == "escalated")
            alert = await uow.session.scalar(
                select(Notification).where(Notification.topic == "escalated")
            )
            assert alert is not None
            composed = await runtime.notifier.staff.compose(uow, alert)
        # Linked to whichever earlier filing reads closest; counted from the first.
        assert linked["to"] in (first, second) and (linked["first"], linked["filing"]) == (first, 3)
        assert raised["cause"] == "repeat" and raised["level"] == 3
        assert f"同一事项第3次反映（首件 {first}），提级包案" in composed.text
        assert "督查室督办" in composed.text


async def test_an_old_matter_is_a_new_one(sqlite_only: Settings) -> None:
    async with open_minyi(sqlite_only) as runtime:
        first = await file(
            runtime, "r1", "小区门口的路灯坏了一个多月，晚上很黑，老人走路容易摔倒。"
        )
        await scan(runtime)
        async with runtime.db.session() as session:
            case = (await session.scalars(select(Case).where(Case.code == first))).one()
            case.created_at = utcnow() - timedelta(days=RULES.window_days + 1)
            await session.commit()
        again = await file(runtime, "r1", "小区门口的路灯还是坏的，晚上很黑。")
        assert await scan(runtime) == 0
        assert (await cases(runtime))[again].repeat_of is None


def test_rules_are_read_from_the_office_file() -> None:
    assert RepeatRules(window_days=180, similar_at=44.0, raise_at=3) == RULES
