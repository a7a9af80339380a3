"""Status notifications as template messages: our field names onto the template's keys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ..base import RecipientUnreachable

# Value limits by key type, as documented for subscription notifications; since 2023 template
# messages use the same typed keys (thing2, time3…). A longer value makes WeChat refuse the
# whole message, so it is shortened here. Classic keys (keyword1, remark) have no limit here.
LIMITS = {
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "phrase": 5,
    "name": 10,
    "phone_number": 17,
    "car_number": 8,
}
_CLIENT_MSG_ID = re.compile(r"[A-Za-z0-9_.:-]{1,32}")


def template_data(fields: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, Any]:
    """`{"thing4": {"value": "…"}}` for each of our fields the template has a key for."""
    data = {
        keys[ours]: {"value": fit(str(value), keys[ours])}
        for ours, value in fields.items()
        if ours in keys
    }
    if not data:
        # A template that cannot carry the notice is like none at all: the notifier moves on.
        raise RecipientUnreachable(
            f"none of the fields {sorted(fields)} is mapped by MINYI_WECHAT_TEMPLATE_FIELDS"
        )
    return data


def fit(value: str, key: str) -> str:
    limit = LIMITS.get(key.rstrip("0123456789"))
    if limit is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def client_msg_id(idempotency_key: str) -> str:
    """WeChat sends one message per openid and client_msg_id (for 10 minutes). Its length
    limit is not documented, so a long key is replaced by a digest of itself — still the
    same for every retry of the same notification."""
    if _CLIENT_MSG_ID.fullmatch(idempotency_key):
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
