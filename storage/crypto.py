"""Personal data at rest: AES-GCM for names and phones, a keyed hash to find a phone again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

_VERSION = b"\x01"
_NONCE = 12


class PiiKeyError(ValueError):
    """The key is missing or malformed; the message says how to make a good one."""


def parse_key(text: str) -> bytes:
    """A 32-byte key given as base64 (url-safe or standard) or 64 hex digits."""
    value = text.strip()
    try:
        if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
            key = bytes.fromhex(value)
        else:
            key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise PiiKeyError(
            "MINYI_PII_KEY must be 32 random bytes in base64 or hex; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    return key


def key_file_for(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + ".key")


def load_or_create_key_file(path: Path) -> bytes:
    """The embedded default's key: created once with mode 0600 beside the SQLite file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "PII key file %s is readable by others (mode %o); run chmod 600", path, mode
            )
        return parse_key(path.read_text("ascii"))
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
    log.info(
        "created PII key file %s (keep it with the database; without it names and phones are lost)",
        path,
    )
    return parse_key(path.read_text("ascii"))


class PiiCipher:
    """Encrypts one field at a time; the field name is bound in, so values cannot be swapped."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        # Separate keys for separate jobs, both derived from the one secret.
        self._hash_key = hmac.new(key, b"minyi phone lookup v1", hashlib.sha256).digest()
        self._check = hmac.new(key, b"minyi key check v1", hashlib.sha256).hexdigest()[:16]

    def key_check(self) -> str:
        """16 hex digits that tell whether two keys are the same one and reveal nothing of it:
        written into backups and shown to operators, for labelling the key kept apart."""
        return self._check

    def encrypt(self, value: str, field: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode("utf-8"), field.encode())

    def decrypt(self, blob: bytes, field: str) -> str:
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        return self._aead.decrypt(nonce, body, field.encode()).decode("utf-8")

    def digest(self, value: str, purpose: str) -> str:
        """A keyed hash for values that contain personal data but must be found again."""
        return hmac.new(
            self._hash_key, f"{purpose}\x00{value}".encode(), hashlib.sha256
        ).hexdigest()

    def phone_hash(self, phone_e164: str) -> str:
        return hmac.new(self._hash_key, phone_e164.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    """+8613800138000 → +86138****8000: enough for staff to recognise, not to dial."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[: len(phone) - 8] + "****" + phone[-4:]


def mask_name(name: str) -> str:
    """张三丰 → 张**: the family name only."""
    return name[:1] + "*" * (len(name) - 1) if name else ""
