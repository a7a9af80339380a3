"""SMS providers (one module each: aliyun, tencent, twilio, http) behind one channel.

What the rest of Minyi uses: `build_sms_channel(config, on_replies)`, `SmsChannel.send_sms`
with an `SmsMessage`, and the `SmsReply` each inbound SMS becomes.
"""

from ..base import Built, Parts, Plugin
from .channel import SmsChannel, WebhookGuard, build_sms_channel
from .common import RepliesHandler, SmsMessage, SmsReply, mask_phone
from .config import SmsConfig, SmsConfigError, TemplateSpec, parse_allow_list, parse_template
from .settings import SETTINGS, configure


def _build(config: SmsConfig, parts: Parts) -> Built:
    # Inbound SMS are answers to what we sent (surveys), not new turns: they go to the survey
    # replies, not to the conversation.
    return Built(channel=build_sms_channel(config, parts.sms_replies))


PLUGIN = Plugin("sms", SETTINGS, configure, _build)

__all__ = [
    "PLUGIN",
    "RepliesHandler",
    "SmsChannel",
    "SmsConfig",
    "SmsConfigError",
    "SmsMessage",
    "SmsReply",
    "TemplateSpec",
    "WebhookGuard",
    "build_sms_channel",
    "mask_phone",
    "parse_allow_list",
    "parse_template",
]
