"""SMS providers (one module each: aliyun, tencent, twilio, http) behind one channel.

What the rest of Minyi uses: `build_sms_channel(config, on_reply)`, `SmsChannel.send_sms`
with an `SmsMessage`, and the `SmsReply` each inbound SMS becomes.
"""

from .channel import SmsChannel, WebhookGuard, build_sms_channel
from .common import ReplyHandler, SmsMessage, SmsReply, mask_phone
from .config import SmsConfig, SmsConfigError, TemplateSpec, parse_allow_list, parse_template

__all__ = [
    "ReplyHandler",
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
