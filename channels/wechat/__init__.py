"""The WeChat official-account channel (公众号): callback in plaintext, compatible and safe mode."""

from dataclasses import replace

from ..base import Built, Parts, Plugin
from .channel import WeChatChannel
from .config import WeChatConfig
from .settings import SETTINGS, configure


def _build(config: WeChatConfig, parts: Parts) -> Built:
    # What a citizen reads when a turn fails: the office's own wording.
    config = replace(config, apology=parts.text("error.internal"))
    return Built(channel=WeChatChannel(config, parts.handle))


PLUGIN = Plugin("wechat", SETTINGS, configure, _build)

__all__ = ["PLUGIN", "WeChatChannel", "WeChatConfig"]
