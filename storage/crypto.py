"""Personal data at rest: AES-GCM for names and phones, a keyed hash to find a phone again."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
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


def read_key_file(path: Path) -> bytes | None:
    """The embedded default's key from its file, or None when there is no file yet.

    A file that is there but holds no key (truncated, edited, another format) is an error naming
    the file: making a new key would leave everything encrypted so far unreadable."""
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PiiKeyError(f"{path}: the personal-data key file cannot be read ({exc})") from None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("PII key file %s is readable by others (mode %o); run chmod 600", path, mode)
    try:
        return parse_key(text)
    except PiiKeyError:
        raise PiiKeyError(
            f"{path}: the personal-data key file is damaged (it must hold 32 bytes in base64); "
            "restore it from the backup kept with the database"
        ) from None


def new_key() -> bytes:
    return secrets.token_bytes(32)


def write_key_file(path: Path, key: bytes) -> None:
    """Write a new key file with mode 0600; never over an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
    log.info(
        "created PII key file %s (keep it with the database; without it names and phones are lost)",
        path,
    )


def load_or_create_key_file(path: Path) -> bytes:
    """The key in `path`, made (0600) when there is none. Start-up does not use this: it writes
    a new file only after the database has said it holds nothing encrypted (storage/keycheck.py)."""
    key = read_key_file(path)
    if key is None:
        with contextlib.suppress(FileExistsError):  # another process made it first: read theirs
            write_key_file(path, new_key())
        key = read_key_file(path)
        assert key is not None
    return key


def key_check(key: bytes) -> str:
    """What the database keeps to recognise its key: an HMAC of a constant, not the key."""
    return hmac.new(key, b"minyi personal-data key check v1", hashlib.sha256).hexdigest()


class PiiCipher:
    """Encrypts one field at a time; the field name is bound in, so values cannot be swapped."""

    def __init__(self, key: bytes, old: bytes | None = None) -> None:
        self._aead = AESGCM(key)
        self.check = key_check(key)
        # While `minyi keys rotate` runs (and until it is done), values sealed under the old key
        # are still read; everything written is sealed under the new one.
        self._old = AESGCM(old) if old is not None else None
        self.old_check = key_check(old) if old is not None else None
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

    def encrypt_bytes(self, data: bytes, field: str) -> bytes:
        """A file (a citizen's photo) sealed like a field: `field` names it, so files cannot be
        swapped for one another."""
        nonce = secrets.token_bytes(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, data, field.encode())

    def decrypt_bytes(self, blob: bytes, field: str) -> bytes:
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, body, field.encode())
        except InvalidTag:
            if self._old is None:
                raise
            return self._old.decrypt(nonce, body, field.encode())

    def decrypt(self, blob: bytes, field: str) -> str:
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, body, field.encode()).decode("utf-8")
        except InvalidTag:
            if self._old is None:
                raise
            return self._old.decrypt(nonce, body, field.encode()).decode("utf-8")

    def sealed_by_current(self, blob: bytes, field: str) -> bool:
        """Whether `blob` opens with the current key (rotation skips those: it can resume)."""
        if not blob or blob[:1] != _VERSION:
            return False
        nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            self._aead.decrypt(nonce, body, field.encode())
        except InvalidTag:
            return False
        return True

    def opens(self, blob: bytes, field: str) -> bool:
        """Whether this cipher can read `blob` at all (the start-up check on an old database)."""
        try:
            self.decrypt(blob, field)
        except (InvalidTag, ValueError):
            return False
        return True

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
