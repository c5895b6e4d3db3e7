"""AES-256-GCM encryption of secrets at rest, bound to the record and field they belong to.

Stored form of an encrypted value: ``enc:1:<key id>:<base64url(iv || ciphertext || tag)>``;
of a plaintext value (no key configured): ``plain:<value>``. The associated data is
``<table>.<field>.<record uid>``, so a ciphertext copied to another row or column fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = "1"
ENC_PREFIX = "enc:"
PLAIN_PREFIX = "plain:"
UNKEYED_HASH_KEY = b"authport-lookup-hash-without-encryption-key"


class DecryptionError(Exception):
    """A stored value cannot be decrypted with the configured keys."""


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, stored beside each ciphertext."""
    return hashlib.sha256(b"authport-key-id:" + key).hexdigest()[:12]


def associated_data(table: str, field: str, record_uid: str) -> bytes:
    return f"{table}.{field}.{record_uid}".encode()


class Cipher:
    """Encrypts with the primary key; decrypts with any key of the ring."""

    def __init__(self, primary: bytes | None, old: tuple[bytes, ...] = ()):
        self.primary = primary
        self.primary_id = key_id(primary) if primary else None
        ring = [primary, *old] if primary else list(old)
        self._ring = {key_id(k): AESGCM(k) for k in ring}
        # One lookup key per ring key, primary first: an API key stays findable while its row
        # still carries the hash made under an old key (during a rotation).
        self._lookup_keys = [_lookup_key(k) for k in ring] if primary else [UNKEYED_HASH_KEY]

    @property
    def enabled(self) -> bool:
        return self.primary is not None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every key this cipher can decrypt with, primary first."""
        return tuple(self._ring)

    def encrypt(self, value: str, table: str, field: str, record_uid: str) -> str:
        if not self.enabled:
            return PLAIN_PREFIX + value
        iv = os.urandom(12)
        sealed = self._ring[self.primary_id].encrypt(iv, value.encode(), associated_data(table, field, record_uid))
        blob = base64.urlsafe_b64encode(iv + sealed).decode().rstrip("=")
        return f"{ENC_PREFIX}{FORMAT_VERSION}:{self.primary_id}:{blob}"

    def decrypt(self, stored: str, table: str, field: str, record_uid: str) -> str:
        """The plaintext of `stored`, or DecryptionError (whose message never holds secret data)."""
        if stored.startswith(PLAIN_PREFIX):
            return stored[len(PLAIN_PREFIX):]
        where = f"{table}.{field} of record {record_uid}"
        if not stored.startswith(ENC_PREFIX):
            raise DecryptionError(f"{where}: value is in no known format")
        parts = stored.split(":", 3)
        if len(parts) != 4:
            raise DecryptionError(f"{where}: malformed ciphertext")
        _, version, kid, blob = parts
        if version != FORMAT_VERSION:
            raise DecryptionError(f"{where}: unknown ciphertext format version {version[:8]!r}")
        aead = self._ring.get(kid)
        if aead is None:
            raise DecryptionError(f"{where}: encrypted with key id {kid[:12]!r}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            return aead.decrypt(raw[:12], raw[12:], associated_data(table, field, record_uid)).decode()
        except (InvalidTag, ValueError):
            # Wrong record or field (associated data), altered bytes, or a truncated value.
            raise DecryptionError(f"{where}: ciphertext failed authentication") from None

    def needs_rewrite(self, stored: str) -> bool:
        """True for plaintext while a key is set, or ciphertext under a non-primary key."""
        if not self.enabled:
            return False
        if stored.startswith(PLAIN_PREFIX):
            return True
        parts = stored.split(":", 3)
        return len(parts) == 4 and parts[2] != self.primary_id

    def lookup_hash(self, secret: str) -> str:
        """Keyed hash (under the primary key) used to find an API key without storing it readable."""
        return _hmac(self._lookup_keys[0], secret)

    def lookup_hashes(self, secret: str) -> list[str]:
        """The lookup hash of `secret` under every key of the ring, primary first."""
        return [_hmac(key, secret) for key in self._lookup_keys]


def _lookup_key(key: bytes) -> bytes:
    return HKDF(SHA256(), 32, salt=None, info=b"authport api key lookup").derive(key)


def _hmac(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def stored_key_id(stored: str) -> str | None:
    """Key id of a stored ciphertext, or None for plaintext."""
    if not stored.startswith(ENC_PREFIX):
        return None
    parts = stored.split(":", 3)
    return parts[2] if len(parts) == 4 else None
