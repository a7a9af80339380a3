"""The WeChat official-account channel (公众号): callback in plaintext, compatible and safe mode."""

from .channel import WeChatChannel
from .config import WeChatConfig

__all__ = ["WeChatChannel", "WeChatConfig"]
