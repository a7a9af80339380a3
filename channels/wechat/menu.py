"""The custom menu `minyi wechat menu` pushes: WeChat's own JSON, checked before it is sent."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from .inbound import MENU_KEY

# WeChat's limits on a button's name: 16 bytes for a top button, 60 for one under it.
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60


class MenuError(ValueError):
    """One line saying which button is wrong and how."""


def load_menu(path: str | None = None, events: frozenset[str] | None = None) -> dict[str, Any]:
    """The menu file (`MINYI_WECHAT_MENU`), or the bundled one, checked (against the menu
    entries' `events` when given: a click key nothing answers is refused)."""
    if path:
        source = path
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MenuError(f"{source}: cannot be read ({exc})") from None
    else:
        source = "bundled menu.json"
        text = resources.files("channels.wechat").joinpath("menu.json").read_text("utf-8")
    try:
        menu: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise MenuError(f"{source}: not valid JSON ({exc})") from None
    check_menu(menu, source, events)
    return menu


def check_menu(menu: Any, source: str = "menu", events: frozenset[str] | None = None) -> None:
    """WeChat's structural rules (1-3 buttons, 1-5 under each, a name of at most 16 bytes on
    top and 60 below, counted in UTF-8 as WeChat counts them) and ours: a click key is a plain
    word, the event of a menu entry (the engine's flow table knows which), so it reaches the
    conversation as written."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise MenuError(f'{source}: needs {{"button": [...]}} with 1 to 3 buttons')
    for button in buttons:
        subs = button.get("sub_button") if isinstance(button, dict) else None
        _check_name(button, source, TOP_NAME_BYTES)
        if subs is None:
            _check_button(button, source, events)
            continue
        if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
            raise MenuError(f"{source}: {_name(button)} needs 1 to 5 sub_button entries")
        for sub in subs:
            _check_name(sub, source, SUB_NAME_BYTES)
            _check_button(sub, source, events)


def _check_name(button: Any, source: str, limit: int) -> None:
    if not isinstance(button, dict) or not str(button.get("name", "")).strip():
        raise MenuError(f"{source}: every button needs a name")
    size = len(str(button["name"]).encode("utf-8"))
    if size > limit:
        raise MenuError(
            f"{source}: {_name(button)} is {size} bytes long; WeChat takes at most {limit}"
            f" ({limit // 3} Chinese characters)"
        )


def _check_button(button: Any, source: str, events: frozenset[str] | None) -> None:
    if not isinstance(button, dict) or not str(button.get("name", "")).strip():
        raise MenuError(f"{source}: every button needs a name")
    kind = button.get("type")
    if kind == "click" and not MENU_KEY.fullmatch(str(button.get("key", "")).lower()):
        raise MenuError(
            f"{source}: {_name(button)} has key {button.get('key')!r}; a click key is the event "
            "of a menu entry: up to 64 lower-case letters, digits, _ or -"
        )
    key = str(button.get("key", "")).lower()
    if kind == "click" and events is not None and key not in events:
        raise MenuError(
            f"{source}: {_name(button)} has key {key!r}, which opens nothing; "
            f"the office's menu entries are: {', '.join(sorted(events))}"
        )
    if kind == "view" and not str(button.get("url", "")).startswith(("https://", "http://")):
        raise MenuError(f"{source}: {_name(button)} needs a url starting with https://")
    if not kind:
        raise MenuError(f"{source}: {_name(button)} needs a type (click, view, …)")


def _name(button: Any) -> str:
    return f"button {button.get('name')!r}" if isinstance(button, dict) else "a button"
