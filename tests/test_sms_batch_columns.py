"""A batch of SMS ratings reads of each case only the columns a rating uses, and still rates
every kind of reply it takes (happy, unhappy, with a comment) without going one by one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import instance_state

from bot.app.settings import Settings
from bot.app.wiring import open_minyi
from bot.backoffice import survey_replies
from channels.sms import SmsReply
from conversation.codes import short_reference
from storage.models import Case
from tests.test_sms_batch import chains_hold, closed_cases, reply


async def test_the_batch_loads_only_what_a_rating_uses(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_minyi(database_settings) as runtime:
        codes = await closed_cases(runtime, 6)
        loaded: list[Case] = []
        locked = survey_replies.SurveyReplies._open_surveys_locked

        async def spy(self: survey_replies.SurveyReplies, *args: object) -> object:
            found = await locked(self, *args)  # type: ignore[arg-type]
            loaded.extend(each.case for surveys in found.values() for each in surveys)
            return found

        monkeypatch.setattr(survey_replies.SurveyReplies, "_open_surveys_locked", spy)
        texts = ["1 {ref}", "2 {ref}", "3 {ref}", "{ref} 3 等太久了", "3", "1"]
        replies: Sequence[SmsReply] = [
            reply(n, texts[n].format(ref=short_reference(codes[n])), f"k{n}") for n in range(6)
        ]
        # Taken by the batch, none left for one by one: an unloaded column read would raise.
        assert await runtime.survey_replies.many(replies) == [True] * 6

        assert len(loaded) == 6
        wanted = {column.key for column in survey_replies.BATCH_CASE_COLUMNS}
        for case in loaded:
            unloaded = instance_state(case).unloaded
            assert {"answers", "risk_words", "stages", "description"} <= unloaded
            assert not wanted & unloaded
        async with runtime.db.session() as session:
            cases = list(await session.scalars(select(Case).where(Case.code.in_(codes))))
        assert {c.status for c in cases} == {"rated"}
        assert {c.code: c.rating_score for c in cases} == {
            codes[n]: [1, 2, 3, 3, 3, 1][n] for n in range(6)
        }
        # The JSON columns, never read by the batch, are as they were.
        assert all(c.answers == {} and c.stages == [] for c in cases)
        assert await chains_hold(runtime)
