"""The SMS channel wired into Minyi: built from settings, with what happens to citizens' replies."""

from __future__ import annotations

from bot.app.settings import Settings, SettingsError, sms_config
from channels.base import Channel, Handler
from channels.sms import ReplyHandler, SmsChannel, SmsConfigError, SmsReply, build_sms_channel


async def not_bound(reply: SmsReply) -> None:
    """Until the runtime binds the survey handler (bot/sms_replies.py) no reply is taken: the
    webhook answers 5xx and the provider delivers it again."""
    raise RuntimeError("SMS replies are not being taken yet (the survey handler is not bound)")


def build_sms(settings: Settings, on_reply: ReplyHandler = not_bound) -> SmsChannel | None:
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
