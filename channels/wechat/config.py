"""What the WeChat channel needs to know about the official account it serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_API_BASE = "https://api.weixin.qq.com"


@dataclass(frozen=True)
class WeChatConfig:
    """One official account: callback secrets, API credentials and the status template.

    `apology` is said when the engine fails; it comes from the office's text catalog, because
    channels hold no citizen-facing sentences of their own.
    """

    token: str
    app_id: str
    apology: str = ""
    app_secret: str | None = None
    # The 43-character EncodingAESKey: set for compatible and safe mode, unset for plaintext.
    aes_key: str | None = None
    api_base: str = DEFAULT_API_BASE
    # Seconds we wait for the engine before answering `success` and pushing the replies later.
    # WeChat gives up on a passive reply after 5 s and then re-sends the message.
    reply_budget: float = 4.0
    # Under load (half of `max_turns` running) the wait is this short; with all `max_turns`
    # running, a push is answered at once and its turn waits in line (shedding, pushed later).
    # 0: no shedding.
    shed_budget: float = 0.5
    max_turns: int = 0
    # Every outbound API call is bounded by this many seconds.
    api_timeout: float = 5.0
    template_id: str | None = None
    # Our field names (code, status, time, note) to the template's keys (character_string1, …).
    template_fields: Mapping[str, str] = field(default_factory=dict)
    # The custom menu `minyi wechat menu` pushes (WeChat's JSON); None = the bundled one.
    menu: str | None = None

    @property
    def encrypted(self) -> bool:
        return bool(self.aes_key)
