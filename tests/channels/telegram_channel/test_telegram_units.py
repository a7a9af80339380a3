"""Telegram pieces without a server: updates → Inbound, rendering, flood-limit schedule, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, Update

from bot.app.settings import SettingsError, load_settings
from channels.telegram.limits import FloodLimiter, Rate
from channels.telegram.render import MAX_TEXT, render, split_text
from channels.telegram.updates import read_update
from conversation.messages import Choice, Location, Media, Reply

from .fake_telegram import SECRET, TOKEN, TelegramUser

BOT = Bot(TOKEN)  # only used to parse updates: no call is made


def parse(data: dict[str, Any]) -> Update:
    update = Update.de_json(data, BOT)
    assert update is not None
    return update


@pytest.fixture
def user() -> TelegramUser:
    return TelegramUser(chat_id=42, language="en-GB")


def test_text_becomes_an_inbound_keyed_by_chat_and_update(user: TelegramUser) -> None:
    data = user.text("The street light is broken")
    received = read_update(parse(data))
    assert received is not None and received.inbound is not None
    inbound = received.inbound
    assert (inbound.channel, inbound.sender, inbound.kind) == ("telegram", "42", "text")
    assert inbound.message_id == str(data["update_id"]) and inbound.language == "en-GB"
    assert inbound.text == "The street light is broken" and not received.callback_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start", "/start"),
        ("/menu@minyi_test_bot", "/menu"),
        ("/CANCEL", "/cancel"),
        ("/start not a payload!", "/start not a payload!"),
        ("1", "1"),
    ],
)
def test_commands_reach_the_engine_as_its_words(
    user: TelegramUser, text: str, expected: str
) -> None:
    received = read_update(parse(user.text(text)))
    assert received is not None and received.inbound is not None
    assert (received.inbound.kind, received.inbound.text) == ("text", expected)


def test_a_start_link_payload_tags_like_a_wechat_qr_scene(user: TelegramUser) -> None:
    received = read_update(parse(user.update("start_deep_link")))
    assert received is not None and received.inbound is not None
    inbound = received.inbound
    assert (inbound.kind, inbound.event, inbound.event_key) == ("event", "subscribe", "town-7")


def test_media_and_places(user: TelegramUser) -> None:
    def inbound(payload: str) -> Any:
        received = read_update(parse(user.update(payload)))
        assert received is not None
        return received.inbound

    photo = inbound("photo")
    assert photo.kind == "image"
    assert photo.media == (Media("image", "AgACAgUAAxkBAAIBb2dAlarge1280"),)  # the largest size
    document = inbound("document_image")
    assert document.kind == "image"
    assert document.media == (Media("image", "BQACAgUAAxkBAAIBcGdAdocumentjpg"),)
    voice = inbound("voice")
    assert (voice.kind, voice.media) == ("voice", (Media("voice", "AwACAgUAAxkBAAIBdGdAvoice"),))
    location = inbound("location")
    assert (location.kind, location.location) == ("location", Location(22.543096, 114.057865))
    venue = inbound("venue")
    assert venue.location == Location(22.54, 114.05, "幸福小区 福田区幸福路12号")
    sticker = inbound("sticker")
    assert (sticker.kind, sticker.event, sticker.event_key) == ("event", "unsupported", "sticker")


@pytest.mark.parametrize("payload", ["edited_message", "group_text", "pinned_service"])
def test_what_the_citizen_channel_leaves_alone(user: TelegramUser, payload: str) -> None:
    assert read_update(parse(user.update(payload))) is None


def test_a_pressed_button_is_its_choice_key_and_is_acknowledged(user: TelegramUser) -> None:
    data = user.press("3", on_message=77)
    received = read_update(parse(data))
    assert received is not None and received.inbound is not None
    assert received.inbound.text == "3" and received.inbound.kind == "text"
    assert received.callback_id == data["callback_query"]["id"]
    assert received.pressed_message_id == 77


def test_choices_become_an_inline_keyboard_with_their_keys() -> None:
    reply = Reply("请选择：", (Choice("1", "我要反映"), Choice("0", "人工服务")))
    [message] = render([reply])
    assert message.text == "请选择："
    assert message.keyboard is not None
    buttons = [(b.text, b.callback_data) for row in message.keyboard.inline_keyboard for b in row]
    assert buttons == [("1 我要反映", "1"), ("0 人工服务", "0")]


def test_a_key_too_long_for_callback_data_falls_back_to_numbered_lines() -> None:
    reply = Reply("请选择：", (Choice("键" * 22, "太长"), Choice("2", "短")))  # 66 bytes
    [message] = render([reply])
    assert message.keyboard is None and message.text == reply.as_plain_text()


def test_long_texts_are_split_below_the_limit_with_the_keyboard_last() -> None:
    paragraph = "情况说明。" * 300  # 1500 characters
    reply = Reply("\n".join([paragraph] * 4), (Choice("1", "提交"),))
    messages = render([reply])
    assert len(messages) == 2
    assert all(len(m.text) <= MAX_TEXT for m in messages)
    assert messages[0].keyboard is None and messages[1].keyboard is not None
    assert "\n".join(m.text for m in messages) == reply.text  # cut at a line break


def test_splitting_counts_emoji_as_two_and_never_cuts_one() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    chunks = split_text(text)
    assert [len(c) for c in chunks] == [2048, 952]
    assert "".join(chunks) == text
    assert split_text("   \n  ") == []


def test_flood_limits_let_a_burst_through_then_pace_each_chat() -> None:
    limiter = FloodLimiter(private=Rate(1.0, burst=3), group=Rate(3.0), overall=Rate(0.1, 100))
    person = [limiter.reserve(42, now=0.0) for _ in range(5)]
    assert person == [0.0, 0.0, 0.0, 1.0, 2.0]
    group = [limiter.reserve(-100, now=0.0) for _ in range(3)]
    assert group == [0.0, 3.0, 6.0]
    assert limiter.reserve(43, now=0.0) == 0.0  # another chat is not held up
    assert limiter.reserve(42, now=10.0) == 0.0  # after a quiet while, at once again


def test_the_whole_bot_is_held_to_its_overall_rate() -> None:
    limiter = FloodLimiter(overall=Rate(1 / 30, burst=30))
    delays = [limiter.reserve(chat, now=0.0) for chat in range(1, 32)]
    assert delays[:30] == [0.0] * 30 and delays[30] == pytest.approx(1 / 30)


def test_a_429_holds_the_chat_for_retry_after() -> None:
    limiter = FloodLimiter()
    limiter.pause(42, now=5.0, seconds=3.0)
    assert limiter.reserve(42, now=5.0) == 3.0
    assert limiter.reserve(7, now=5.0) == 0.0


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "minyi.toml"
    path.write_text("", "utf-8")
    return path


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MINYI_TELEGRAM_TOKEN": TOKEN}, "MINYI_TELEGRAM_SECRET: required"),
        (
            {"MINYI_TELEGRAM_TOKEN": TOKEN, "MINYI_TELEGRAM_SECRET": "has spaces"},
            "MINYI_TELEGRAM_SECRET: must be 16-256 characters",
        ),
        (
            {"MINYI_TELEGRAM_TOKEN": TOKEN, "MINYI_TELEGRAM_SECRET": "x" * 257},
            "MINYI_TELEGRAM_SECRET: must be 16-256 characters",
        ),
        (
            {"MINYI_TELEGRAM_TOKEN": "not/a-token", "MINYI_TELEGRAM_SECRET": SECRET},
            "MINYI_TELEGRAM_TOKEN: not a bot token",
        ),
        (
            {
                "MINYI_TELEGRAM_TOKEN": TOKEN,
                "MINYI_TELEGRAM_SECRET": SECRET,
                "MINYI_TELEGRAM_API_BASE": "api.telegram.org",
            },
            "MINYI_TELEGRAM_API_BASE: 'api.telegram.org' is not a valid URL",
        ),
    ],
)
def test_telegram_settings_are_refused_in_one_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env, config_file=_empty(tmp_path))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_good_telegram_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {"MINYI_TELEGRAM_TOKEN": TOKEN, "MINYI_TELEGRAM_SECRET": SECRET},
        config_file=_empty(tmp_path),
    )
    assert settings.channel("telegram").api_base == "https://api.telegram.org"
