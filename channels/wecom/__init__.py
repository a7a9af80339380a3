"""WeCom (企业微信) self-built app: the two-way staff front end offices in mainland China use.

settings.py  MINYI_WECOM_*
envelope.py  callback signature, clock and AES before anything is read
commands.py  认领 / 查看 / 结束 / words, and card buttons, as StaffActions
api.py       access token and message/send, paced within WeCom's per-member limits
app.py       WeComApp: routes, callbacks, alert cards, words to the claimer
"""

from ..base import Built, Parts, Plugin
from .app import WeComApp
from .settings import SETTINGS, WeComConfig, configure


def _build(config: WeComConfig, parts: Parts) -> Built:
    app = WeComApp(config, parts.staff_actions, parts.staff_roster("wecom"))
    return Built(channel=app, staff=app)


PLUGIN = Plugin("wecom", SETTINGS, configure, _build)

__all__ = ["PLUGIN", "WeComApp", "WeComConfig"]
