"""TelegramSender against the fake Bot API: pacing, 429 retries and typed failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from channels.base import DeliveryFailed, RecipientUnreachable
from channels.telegram import FloodLimiter, Rate, TelegramSender, build_application

from .conftest import VirtualTime
from .fake_telegram import TOKEN, FakeBotApi

CHAT = 1111111111


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sender(
    fake_api: FakeBotApi, http: aiohttp.ClientSession, virtual_time: VirtualTime
) -> TelegramSender:
    bot = build_application(TOKEN, fake_api.base, http).bot
    return TelegramSender(bot, clock=virtual_time.clock, sleep=virtual_time.sleep)


async def test_429_then_success_waits_retry_after_and_sends_the_same_message(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    fake_api.too_many_requests(retry_after=3)
    message = await sender.send_message(CHAT, "您的事项已受理。")
    assert message.text == "您的事项已受理。"
    calls = fake_api.called("sendMessage")
    assert [c.status for c in calls] == [429, 200] and calls[0].params == calls[1].params
    assert virtual_time.slept == [3.0]


async def test_a_wait_longer_than_we_hold_a_request_is_left_to_the_caller(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    fake_api.too_many_requests(retry_after=120)
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send_message(CHAT, "x")
    assert failure.value.retry_after == 120 and not isinstance(failure.value, RecipientUnreachable)
    assert len(fake_api.called("sendMessage")) == 1 and virtual_time.slept == []
    # The chat stays held: the next send does not hammer Telegram either.
    with pytest.raises(DeliveryFailed) as again:
        await sender.send_message(CHAT, "y")
    assert again.value.retry_after == pytest.approx(120)
    assert len(fake_api.called("sendMessage")) == 1


async def test_flood_control_that_does_not_end_fails_after_the_attempts(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    fake_api.too_many_requests(retry_after=2)
    fake_api.too_many_requests(retry_after=2)
    fake_api.too_many_requests(retry_after=2)
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send_message(CHAT, "x")
    assert failure.value.retry_after == 2
    assert len(fake_api.called("sendMessage")) == 3 and virtual_time.slept == [2.0, 2.0]


@pytest.mark.parametrize(
    ("status", "description", "unreachable"),
    [
        (403, "Forbidden: bot was blocked by the user", True),
        (403, "Forbidden: user is deactivated", True),
        (400, "Bad Request: chat not found", True),
        (400, "Bad Request: message text is empty", False),
        (500, "Internal Server Error", False),
        (502, "Bad Gateway", False),
    ],
)
async def test_failures_are_typed_for_the_notifier(
    sender: TelegramSender,
    fake_api: FakeBotApi,
    status: int,
    description: str,
    unreachable: bool,
) -> None:
    fake_api.fail("sendMessage", status, description)
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send_message(CHAT, "x")
    assert isinstance(failure.value, RecipientUnreachable) is unreachable
    # PTB drops Telegram's "Bad Request: " prefix; the rest is the reason.
    assert description.split(": ")[-1].lower() in failure.value.reason.lower()
    assert failure.value.retry_after is None
    assert len(fake_api.called("sendMessage")) == 1  # no blind retry of a refused message


async def test_an_unreachable_bot_api_is_a_delivery_failure(
    http: aiohttp.ClientSession, virtual_time: VirtualTime
) -> None:
    bot = build_application(TOKEN, "http://127.0.0.1:9", http).bot  # nothing listens there
    sender = TelegramSender(bot, clock=virtual_time.clock, sleep=virtual_time.sleep)
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send_message(CHAT, "x")
    assert TOKEN not in str(failure.value)  # the token never leaks into errors or logs


async def test_messages_to_one_person_are_paced_after_a_short_burst(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    for n in range(5):
        await sender.send_message(CHAT, f"第{n + 1}条")
    assert virtual_time.slept == [1.0, 1.0]  # three at once, then one a second
    assert fake_api.texts() == [f"第{n + 1}条" for n in range(5)]


async def test_a_group_gets_twenty_messages_a_minute(
    fake_api: FakeBotApi, http: aiohttp.ClientSession, virtual_time: VirtualTime
) -> None:
    bot = build_application(TOKEN, fake_api.base, http).bot
    limiter = FloodLimiter(group=Rate(3.0))
    sender = TelegramSender(bot, limiter, clock=virtual_time.clock, sleep=virtual_time.sleep)
    for _ in range(3):
        await sender.send_message(-1002233445566, "新的转人工请求")
    assert virtual_time.slept == [3.0, 3.0]


async def test_any_call_into_a_chat_goes_through_the_same_pacing(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    """The staff group will edit alerts and answer buttons through `call`."""
    fake_api.too_many_requests("editMessageText", retry_after=1)
    edited = await sender.call(
        -100, lambda: sender.bot.edit_message_text("已认领", chat_id=-100, message_id=5)
    )
    assert edited is not True and [c.status for c in fake_api.called("editMessageText")] == [
        429,
        200,
    ]
    assert virtual_time.slept == [3.0]  # the group's own pace is longer than the 1 s asked


async def test_files_go_up_as_multipart(sender: TelegramSender, fake_api: FakeBotApi) -> None:
    """Not used by the citizen channel yet; the transport must still carry uploads."""
    await sender.call(
        CHAT,
        lambda: sender.bot.send_document(
            CHAT, document=b"case XF20261122-7K3M9Q", filename="case.txt", caption="回执"
        ),
    )
    [call] = fake_api.called("sendDocument")
    assert call.params["chat_id"] == CHAT and call.params["caption"] == "回执"
    assert call.params["document"]["content"] == b"case XF20261122-7K3M9Q"


async def test_a_400_that_mentions_retry_after_is_not_flood_control(
    sender: TelegramSender, fake_api: FakeBotApi, virtual_time: VirtualTime
) -> None:
    fake_api.fail("sendMessage", 400, "Bad Request: can't parse retry_after entity")
    with pytest.raises(DeliveryFailed) as failure:
        await sender.send_message(CHAT, "x")
    assert failure.value.retry_after is None and virtual_time.slept == []
