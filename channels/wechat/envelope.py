"""Opening a WeChat push before anything is parsed or stored: signatures, replay window, AES, XML.

Order matters. The query `signature` (token, timestamp, nonce) is checked first; in compatible
and safe mode the body's `msg_signature` and the AppId sealed inside the ciphertext are checked
next. Only then is the message XML parsed, with defusedxml, so a DTD or entity never reaches the
expat-based parser wechatpy uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

# The query signature covers only token, timestamp and nonce, never the body: a signed URL seen
# once (a proxy log, say) would be replayable forever. Retries come within seconds, so a push
# whose timestamp is this far from our clock is refused.
MAX_CLOCK_SKEW = 600


class Refused(Exception):
    """Not from WeChat (or not for this account): 403, a metric, nothing stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(Exception):
    """Signed, but not a message we can read: 400."""


@dataclass(frozen=True)
class Opened:
    """A verified push: its message XML (decrypted in AES mode) and how to answer it."""

    xml: str
    root: Element
    encrypted: bool
    nonce: str


class Envelope:
    def __init__(
        self,
        token: str,
        app_id: str,
        aes_key: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.clock = clock

    def check_query(self, query: Mapping[str, str]) -> None:
        """The `signature` of every GET and POST, and a timestamp close to ours."""
        signature, timestamp, nonce = (
            query.get(k, "") for k in ("signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise Refused("unsigned")
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Refused("signature") from None
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > MAX_CLOCK_SKEW:
            raise Refused("stale")

    def open(self, query: Mapping[str, str], body: bytes) -> Opened:
        """The push's message, once `check_query` has passed."""
        nonce = query.get("nonce", "")
        if query.get("encrypt_type", "raw") != "aes":
            if self.crypto is not None:
                # With an AES key the account is in compatible or safe mode and WeChat always
                # encrypts; a plaintext body here would skip the msg_signature check.
                raise Refused("plaintext")
            return _opened(body, encrypted=False, nonce=nonce)
        if self.crypto is None:
            # Compatible mode without our key: the plaintext copy is as trustworthy as in
            # plaintext mode. Safe mode without our key cannot work at all.
            opened = _opened(body, encrypted=False, nonce=nonce)
            if opened.root.find("MsgType") is None:
                raise Malformed("encrypted push, but MINYI_WECHAT_AES_KEY is not set")
            return opened
        msg_signature = query.get("msg_signature", "")
        if not msg_signature:
            raise Refused("msg_signature")
        encrypted = _element_text(safe_xml(body), "Encrypt")
        if not encrypted:
            raise Malformed("no <Encrypt> in an encrypted push")
        try:
            xml = self.crypto.decrypt_message(
                {"Encrypt": encrypted}, msg_signature, query.get("timestamp", ""), nonce
            )
        except InvalidSignatureException:
            raise Refused("msg_signature") from None
        except InvalidAppIdException:
            raise Refused("app_id") from None
        except Exception:
            # A valid msg_signature over undecryptable bytes: someone holds the token but not
            # the key, or the key was changed on one side only.
            raise Refused("decrypt") from None
        return _opened(xml.encode(), encrypted=True, nonce=nonce)

    def seal(self, xml: str, opened: Opened) -> str:
        """The passive reply, encrypted whenever the push was."""
        if not opened.encrypted or self.crypto is None:
            return xml
        return str(self.crypto.encrypt_message(xml, opened.nonce, str(int(self.clock()))))


def safe_xml(data: bytes) -> Element:
    """The document's root `<xml>`, refusing DTDs, entities and anything that is not XML."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise Malformed(f"not acceptable XML ({type(exc).__name__})") from None
    if root.tag != "xml":
        raise Malformed(f"root element is <{root.tag}>, not <xml>")
    return root


def _opened(data: bytes, *, encrypted: bool, nonce: str) -> Opened:
    root = safe_xml(data)
    try:
        xml = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    return Opened(xml=xml, root=root, encrypted=encrypted, nonce=nonce)


def _element_text(root: Element, tag: str) -> str:
    child = root.find(tag)
    return (child.text or "").strip() if child is not None else ""
