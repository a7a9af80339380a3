"""A WeCom (企业微信) group robot as a staff-alert target: markdown, batched, rate-limited."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from .base import Built, DeliveryFailed, Parts, Plugin, Services, SharedCache
from .settings import Spec, text, url
from .staff import StaffAlert, post_json

WECOM_PER_MINUTE = 20
WECOM_MAX_BYTES = 4096
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"


class WeComRobot:
    """A WeCom (企业微信) group robot: markdown, batched, at most 20 messages a minute across processes."""

    name = "wecom"

    def __init__(self, api_base: str, key: str) -> None:
        self.url = f"{api_base}/cgi-bin/webhook/send?key={key}"
        self._http: aiohttp.ClientSession | None = None
        self._shared: SharedCache | None = None

    async def start(self, services: Services) -> None:
        self._http, self._shared = services.http, services.shared

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise DeliveryFailed("the WeCom robot is not started")
        return self._http

    @property
    def shared(self) -> SharedCache:
        if self._shared is None:
            raise DeliveryFailed("the WeCom robot is not started")
        return self._shared

    async def send(self, alerts: Sequence[StaffAlert]) -> dict[str, str]:
        for page in _markdown_pages(alerts):
            await self._take_slot()
            body = json.dumps(
                {"msgtype": "markdown", "markdown": {"content": page}}, ensure_ascii=False
            )
            answer = await post_json(
                self.http,
                self.url,
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            if answer.get("errcode", 0) != 0:
                raise DeliveryFailed(
                    f"WeCom robot: {answer.get('errcode')} {answer.get('errmsg', '')}"
                )
        return {}

    async def _take_slot(self) -> None:
        """One of 20 slots, each free again 60 s after it was taken, or DeliveryFailed.

        Per sliding minute, not per calendar minute: 20 at 12:00:59 and 20 more at 12:01:00
        would be 40 within a second, and the robot drops what passes 20 without an error."""
        for slot in range(WECOM_PER_MINUTE):
            if await self.shared.add(f"wecom:slot:{slot}", "1", ttl=60):
                return
        raise DeliveryFailed(
            "WeCom robot: 20 messages within the last minute already",
            retry_after=60 / WECOM_PER_MINUTE,  # when the oldest slot frees is not known here
        )


def _markdown_pages(alerts: Sequence[StaffAlert]) -> list[str]:
    """As few messages as fit in 4096 bytes each, alerts never split."""
    pages: list[str] = []
    current = ""
    for alert in alerts:
        lines = alert.lines()
        block = f"**{lines[0]}**\n" + "\n".join(f"> {line}" for line in lines[1:])
        candidate = f"{current}\n\n{block}" if current else block
        if current and len(candidate.encode()) > WECOM_MAX_BYTES:
            pages.append(current)
            candidate = block
        current = (
            candidate[: WECOM_MAX_BYTES // 3]
            if len(candidate.encode()) > WECOM_MAX_BYTES
            else candidate
        )
    if current:
        pages.append(current)
    return pages


@dataclass(frozen=True)
class RobotConfig:
    key: str
    api_base: str = DEFAULT_API_BASE


SETTINGS = (
    Spec("MINYI_STAFF_WECOM_KEY", text),
    Spec("MINYI_STAFF_WECOM_API_BASE", url("http", "https"), DEFAULT_API_BASE),
)


def _configure(values: Mapping[str, Any]) -> RobotConfig | None:
    key = values["staff_wecom_key"]
    return RobotConfig(key, values["staff_wecom_api_base"]) if key else None


def _build(config: RobotConfig, parts: Parts) -> Built:
    return Built(staff=WeComRobot(config.api_base, config.key))


PLUGIN = Plugin("wecom_robot", SETTINGS, _configure, _build)
