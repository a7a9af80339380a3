"""The office's own receiver of staff alerts: a JSON POST signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from .base import Built, DeliveryFailed, Parts, Plugin, Services
from .settings import Spec, require, secret, url
from .staff import StaffAlert, post_json


class SignedWebhook:
    """A JSON POST to the office's own system, signed X-Minyi-Signature = hex HMAC-SHA256(body)."""

    name = "webhook"

    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret.encode()
        self._http: aiohttp.ClientSession | None = None

    async def start(self, services: Services) -> None:
        self._http = services.http

    async def send(self, alerts: Sequence[StaffAlert]) -> dict[str, str]:
        if self._http is None:
            raise DeliveryFailed("the staff webhook is not started")
        body = json.dumps({"alerts": [asdict(a) for a in alerts]}, ensure_ascii=False).encode()
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        await post_json(
            self._http,
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "X-Minyi-Signature": signature},
        )
        return {}


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str


SETTINGS = (
    Spec("MINYI_STAFF_WEBHOOK_URL", url("http", "https")),
    Spec("MINYI_STAFF_WEBHOOK_SECRET", secret(16)),
)


def _configure(values: Mapping[str, Any]) -> WebhookConfig | None:
    if not values["staff_webhook_url"]:
        return None
    secret = require(
        values,
        "staff_webhook_secret",
        "MINYI_STAFF_WEBHOOK_SECRET",
        "when MINYI_STAFF_WEBHOOK_URL is set (alerts are signed)",
    )
    return WebhookConfig(values["staff_webhook_url"], secret)


def _build(config: WebhookConfig, parts: Parts) -> Built:
    return Built(staff=SignedWebhook(config.url, config.secret))


PLUGIN = Plugin("staff_webhook", SETTINGS, _configure, _build)
