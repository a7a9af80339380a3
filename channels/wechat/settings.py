"""The official account's `MINYI_WECHAT_*` settings, read and checked together."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..settings import SettingError, Spec, existing_file, number, require, text, url
from .config import DEFAULT_API_BASE, WeChatConfig

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TEMPLATE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _aes_key(name: str, value: str) -> str:
    if len(value) != 43:
        raise SettingError(
            f"{name}: the EncodingAESKey must be 43 characters, this one has {len(value)}"
        )
    return value


def _field_map(name: str, value: str) -> tuple[tuple[str, str], ...]:
    """`code=character_string1,status=phrase2`: our field names to a template's own keys."""
    if not value:
        return ()
    pairs = []
    for item in value.split(","):
        ours, _, theirs = (part.strip() for part in item.partition("="))
        if not _FIELD_NAME.fullmatch(ours) or not _TEMPLATE_KEY.fullmatch(theirs):
            raise SettingError(
                f"{name}: {item.strip()!r} must look like code=character_string1 "
                "(our field = the template's key, pairs separated by commas)"
            )
        pairs.append((ours, theirs))
    if len({ours for ours, _ in pairs}) != len(pairs):
        raise SettingError(f"{name}: a field is mapped twice in {value!r}")
    return tuple(pairs)


def _token(name: str, value: str) -> str:
    """WeChat takes 3-32 letters and digits; we want at least 16, so that it cannot be guessed."""
    if not (16 <= len(value) <= 32 and value.isascii() and value.isalnum()):
        raise SettingError(
            f"{name}: use 16-32 random letters and digits (WeChat allows at most 32); "
            f"this one has {len(value)} characters"
        )
    return value


SETTINGS = (
    Spec("MINYI_WECHAT_TOKEN", _token),
    Spec("MINYI_WECHAT_APP_ID", text),
    Spec("MINYI_WECHAT_APP_SECRET", text),
    Spec("MINYI_WECHAT_AES_KEY", _aes_key),
    Spec("MINYI_WECHAT_API_BASE", url("http", "https"), DEFAULT_API_BASE),
    Spec("MINYI_WECHAT_REPLY_BUDGET", number(float, 0.5, 4.8), 4.0),
    Spec("MINYI_WECHAT_SHED_BUDGET", number(float, 0.05, 4.8), 0.5),
    Spec("MINYI_WECHAT_MAX_TURNS", number(int, 0, 100_000)),
    Spec("MINYI_WECHAT_TEMPLATE_ID", text),
    Spec("MINYI_WECHAT_TEMPLATE_FIELDS", _field_map, ()),
    Spec("MINYI_WECHAT_MENU", existing_file),
)


def configure(values: Mapping[str, Any]) -> WeChatConfig | None:
    """The account's configuration, or None when WeChat is off (no token)."""
    if values["wechat_template_id"] and not values["wechat_template_fields"]:
        raise SettingError(
            "MINYI_WECHAT_TEMPLATE_FIELDS: required when MINYI_WECHAT_TEMPLATE_ID is set "
            "(e.g. code=character_string1,status=phrase2,time=time3,note=thing4)"
        )
    if values["wechat_template_fields"] and not values["wechat_template_id"]:
        raise SettingError(
            "MINYI_WECHAT_TEMPLATE_ID: required when MINYI_WECHAT_TEMPLATE_FIELDS is set"
        )
    if not values["wechat_token"]:
        if values["wechat_aes_key"]:
            raise SettingError("MINYI_WECHAT_TOKEN: required when MINYI_WECHAT_AES_KEY is set")
        return None
    app_id = require(
        values, "wechat_app_id", "MINYI_WECHAT_APP_ID", "when MINYI_WECHAT_TOKEN is set"
    )
    return WeChatConfig(
        token=values["wechat_token"],
        app_id=app_id,
        app_secret=values["wechat_app_secret"],
        aes_key=values["wechat_aes_key"],
        api_base=values["wechat_api_base"],
        reply_budget=values["wechat_reply_budget"],
        shed_budget=values["wechat_shed_budget"],
        max_turns=_max_turns(values),
        template_id=values["wechat_template_id"],
        template_fields=dict(values["wechat_template_fields"]),
        menu=values["wechat_menu"],
    )


# Turns at once before shedding, when not set: with Redis, a shed reply's claim and push are
# cheap; on the embedded database each is a write for its one writer, and shedding measured
# half the replies a second it gave without (docs/wechat.md), so it is off there unless set.
SHED_AT = 16


def _max_turns(values: Mapping[str, Any]) -> int:
    chosen = values["wechat_max_turns"]
    if chosen is not None:
        return int(chosen)
    return SHED_AT if values.get("shared_in_redis") else 0
