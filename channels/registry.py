"""Every channel and staff front end Minyi knows, one line each.

Adding a provider is one package in channels/ (its settings, routes, parsing, sending and how it
reaches people, ending in a `PLUGIN`) and one line here. Order matters once: a citizen is
reached first on their own channel, then by the others in this order (SMS last resort).
"""

from __future__ import annotations

from . import sms, staff_webhook, telegram, webchat, wechat, wecom, wecom_robot
from .base import Plugin

PLUGINS: tuple[Plugin, ...] = (
    webchat.PLUGIN,
    wechat.PLUGIN,
    telegram.PLUGIN,
    sms.PLUGIN,
    wecom.PLUGIN,
    wecom_robot.PLUGIN,
    staff_webhook.PLUGIN,
)
