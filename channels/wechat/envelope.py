"""Opening a WeChat push before anything is parsed or stored: signatures, replay window, AES, XML.

Order matters. The query `signature` (token, timestamp, nonce) is checked first; in compatible
and safe mode the body's `msg_signature` and the AppId sealed inside the ciphertext are checked
next. Only then is the message XML parsed, and a document that declares a DTD is refused before
the parser sees it, so no entity is ever declared, let alone expanded (`safe_xml`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, XMLParser

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException

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
        self.app_id = app_id
        # wechatpy's cipher for WeChat's scheme, made once: the IV is the key's first 16 bytes,
        # so every message's cipher is the same one, which wechatpy's `WeChatCrypto` builds
        # anew for each message (two a turn, a twentieth of the channel's own CPU).
        self.crypto = PrpCrypto(WeChatCrypto(token, aes_key, app_id).key) if aes_key else None
        self.clock = clock

    def check_query(self, query: Mapping[str, str]) -> None:
        """The `signature` of every GET and POST, and a timestamp close to ours."""
        signature, timestamp, nonce = (
            query.get(k, "") for k in ("signature", "timestamp", "nonce")
        )
        if not (signature and timestamp and nonce):
            raise Refused("unsigned")
        if not signed(signature, self.token, timestamp, nonce):
            raise Refused("signature")
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
        if not signed(msg_signature, self.token, query.get("timestamp", ""), nonce, encrypted):
            raise Refused("msg_signature")
        try:
            xml = str(self.crypto.decrypt(encrypted, self.app_id))
        except InvalidAppIdException:
            raise Refused("app_id") from None
        except Exception:
            # A valid msg_signature over undecryptable bytes: someone holds the token but not
            # the key, or the key was changed on one side only.
            raise Refused("decrypt") from None
        return Opened(xml=xml, root=safe_xml(xml), encrypted=True, nonce=nonce)

    def seal(self, xml: str, opened: Opened) -> str:
        """The passive reply, encrypted whenever the push was."""
        if not opened.encrypted or self.crypto is None:
            return xml
        # As wechatpy's `encrypt_message` writes it.
        sealed = self.crypto.encrypt(xml, self.app_id).decode()
        timestamp = str(int(self.clock()))
        signature = _signature(self.token, timestamp, opened.nonce, sealed)
        return _SEALED.format(sealed, signature, timestamp, opened.nonce)


_SEALED = """<xml>
<Encrypt><![CDATA[{}]]></Encrypt>
<MsgSignature><![CDATA[{}]]></MsgSignature>
<TimeStamp>{}</TimeStamp>
<Nonce><![CDATA[{}]]></Nonce>
</xml>"""


def _signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed(signature: str, *parts: str) -> bool:
    """Whether `signature` is WeChat's (and WeCom's) signature of `parts`."""
    # Compared in constant time (wechatpy compares with `!=`); compare_digest takes only ASCII
    # text, and no other text is a signature.
    return signature.isascii() and hmac.compare_digest(_signature(*parts), signature)


def safe_xml(data: bytes | str) -> Element:
    """The document's root `<xml>`, refusing DTDs (so every entity but XML's five), anything
    that is not UTF-8 and anything that is not XML.

    A DTD can stand only before the root element, so one is refused there, before the parser
    sees the document (`_declares`); without it no entity can be declared, so none expanded or
    fetched. The parser is then the standard library's, in C: defusedxml, which refused DTDs in
    the parser's own handlers, needs the pure-Python parser for that, and parsing the two
    documents of a push that way was a tenth of the channel's CPU. The document reaches the
    parser as text, decoded as UTF-8 here, so that its own encoding declaration cannot change how
    it is read (a UTF-16 DTD that this check could not see)."""
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    if _declares(text):
        raise Malformed("not acceptable XML (a DTD)")
    parser = XMLParser()
    try:
        parser.feed(text)
        root = parser.close()
    except (ParseError, ValueError) as exc:
        raise Malformed(f"not acceptable XML ({type(exc).__name__})") from None
    if root.tag != "xml":
        raise Malformed(f"root element is <{root.tag}>, not <xml>")
    return root


def _declares(text: str) -> bool:
    """True when a markup declaration (`<!DOCTYPE …`) stands before the root element, the one
    place XML allows one. Processing instructions and comments there are passed over as the
    parser reads them (each up to its first `?>` or `-->`); anything the parser would read
    differently is a broken document, which it refuses anyway."""
    at = 0
    while (at := text.find("<", at)) >= 0:
        if text.startswith("<?", at):
            end, close = text.find("?>", at + 2), 2
        elif text.startswith("<!--", at):
            end, close = text.find("-->", at + 4), 3
        else:
            return text.startswith("<!", at)
        if end < 0:
            return False  # unclosed: the parser refuses it
        at = end + close
    return False


def _opened(data: bytes, *, encrypted: bool, nonce: str) -> Opened:
    try:
        xml = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("not UTF-8") from None
    return Opened(xml=xml, root=safe_xml(xml), encrypted=encrypted, nonce=nonce)


def _element_text(root: Element, tag: str) -> str:
    child = root.find(tag)
    return (child.text or "").strip() if child is not None else ""
