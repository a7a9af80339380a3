"""Opening a WeCom callback before anything is parsed or stored: signature, clock, AES, XML.

WeCom always encrypts (the same scheme as WeChat's safe mode, with the CorpID sealed inside).
The `msg_signature` over (token, timestamp, nonce, ciphertext) is checked first, the timestamp
must be near ours (a signed URL seen once must not replay forever), the CorpID inside the
ciphertext must be ours, and only then is the XML parsed (`safe_xml`, which refuses a DTD).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from xml.etree.ElementTree import Element

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

from ..wechat.envelope import MAX_CLOCK_SKEW, Malformed, Refused, safe_xml, signed


class Envelope:
    def __init__(
        self, token: str, aes_key: str, corp_id: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.token = token
        self.key = WeChatCrypto(token, aes_key, corp_id).key
        # Made once: WeCom's IV is the key's first 16 bytes, the same for every message.
        self.crypto = PrpCrypto(self.key)
        self.corp_id = corp_id
        self.clock = clock

    def _fresh(self, query: Mapping[str, str]) -> tuple[str, str, str]:
        signature, timestamp, nonce = (
            query.get(k, "") for k in ("msg_signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise Refused("unsigned")
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > MAX_CLOCK_SKEW:
            raise Refused("stale")
        return signature, timestamp, nonce

    def echo(self, query: Mapping[str, str]) -> str:
        """The URL check: the decrypted `echostr`, when it is signed by our token."""
        signature, timestamp, nonce = self._fresh(query)
        return self._decrypt(query.get("echostr", ""), signature, timestamp, nonce)

    def _decrypt(self, sealed: str, signature: str, timestamp: str, nonce: str) -> str:
        if not sealed:
            raise Refused("unsigned")
        # Checked before any decryption, in constant time (WeChat's scheme).
        if not signed(signature, self.token, timestamp, nonce, sealed):
            raise Refused("signature")
        try:
            return str(self.crypto.decrypt(sealed, self.corp_id))
        except InvalidCorpIdException:
            raise Refused("corp_id") from None
        except Exception:
            # A valid signature over undecryptable bytes: the token leaked but not the key, or
            # the key was changed on one side only.
            raise Refused("decrypt") from None

    def open(self, query: Mapping[str, str], body: bytes) -> Element:
        """The callback's message, verified and decrypted."""
        signature, timestamp, nonce = self._fresh(query)
        outer = safe_xml(body)
        child = outer.find("Encrypt")
        encrypted = (child.text or "").strip() if child is not None else ""
        if not encrypted:
            raise Malformed("no <Encrypt> in the callback")
        xml = self._decrypt(encrypted, signature, timestamp, nonce)
        return safe_xml(xml)
