"""The SMS channel wired into Minyi: built from settings, with what happens to citizens' replies."""

from __future__ import annotations

import logging

from channels.base import Channel, Handler
from channels.sms import ReplyHandler, SmsChannel, SmsConfigError, SmsReply, build_sms_channel

from .logs import mask_phones
from .settings import Settings, SettingsError, sms_config

log = logging.getLogger(__name__)


async def log_sms_reply(reply: SmsReply) -> None:
    """Write an SMS reply to the log (phone numbers masked) and nothing more.

    Replies are not recorded anywhere yet: the satisfaction-survey work (issue 5) replaces this
    handler with one that records the reply durably, ignores re-deliveries by `dedupe_key`,
    and binds the rating to its case. Until then the log line is the only trace of a reply.
    """
    log.warning(
        "SMS reply %s from %s at %s was only logged (SMS replies are not recorded yet): %s",
        reply.dedupe_key,
        reply.masked_phone,
        reply.received_at.isoformat(),
        mask_phones(reply.text[:200]),
    )


def build_sms(settings: Settings, on_reply: ReplyHandler = log_sms_reply) -> SmsChannel | None:
    """The SMS channel when MINYI_SMS_PROVIDER is set. Inbound SMS go to `on_reply`, not to
    the conversation engine: they are answers to what we sent (surveys), not new turns."""
    try:
        config = sms_config(settings)
        return None if config is None else build_sms_channel(config, on_reply)
    except SmsConfigError as exc:
        raise SettingsError(str(exc)) from None


def sms_channel(settings: Settings, handle: Handler) -> Channel | None:
    """The registry's builder (bot/channels.py)."""
    return build_sms(settings)
