"""The WeCom (企业微信) self-built app's `MINYI_WECOM_*` settings, read and checked together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..settings import SettingError, Spec, number, pattern, text, url

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
REQUIRED = (
    "MINYI_WECOM_CORP_ID",
    "MINYI_WECOM_AGENT_ID",
    "MINYI_WECOM_SECRET",
    "MINYI_WECOM_TOKEN",
    "MINYI_WECOM_AES_KEY",
)

SETTINGS = (
    Spec(
        "MINYI_WECOM_CORP_ID",
        pattern(
            r"ww[0-9a-f]{16}|wx[0-9a-f]{16}",
            "not a CorpID (我的企业 → 企业ID, like ww0123456789abcdef)",
        ),
    ),
    Spec("MINYI_WECOM_AGENT_ID", number(int, 1, 2**31 - 1)),
    Spec("MINYI_WECOM_SECRET", text),
    Spec(
        "MINYI_WECOM_TOKEN",
        pattern(r"[A-Za-z0-9]{3,32}", "the app's callback Token is 3-32 letters and digits"),
    ),
    Spec(
        "MINYI_WECOM_AES_KEY",
        pattern(r"[A-Za-z0-9]{43}", "the EncodingAESKey must be 43 letters and digits"),
    ),
    Spec("MINYI_WECOM_API_BASE", url("http", "https"), DEFAULT_API_BASE),
)


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_base: str = DEFAULT_API_BASE


def configure(values: Mapping[str, Any]) -> WeComConfig | None:
    """The app's configuration, or None when none of it is set; all of it, or a line naming
    what is missing."""
    given = {spec.env: values[spec.field] for spec in SETTINGS if spec.env in REQUIRED}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise SettingError(
            f"{missing[0]}: required with the other MINYI_WECOM_* settings (the app's "
            "应用管理 → 自建应用 page and its 接收消息 → 设置API接收 page give them)"
        )
    return WeComConfig(
        corp_id=values["wecom_corp_id"],
        agent_id=values["wecom_agent_id"],
        secret=values["wecom_secret"],
        token=values["wecom_token"],
        aes_key=values["wecom_aes_key"],
        api_base=values["wecom_api_base"],
    )
