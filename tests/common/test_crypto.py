"""AES-256-GCM at rest: format, binding to record and field, tampering, key ring, lookup hashes."""

from __future__ import annotations

import base64
import os
import re

import pytest

from common.crypto import Cipher, DecryptionError, key_id, stored_key_id

K1, K2 = os.urandom(32), os.urandom(32)
WHERE = ("connections", "credentials_enc", "uid-1")
SECRET = "access-token-0123456789"


def flip_bit(stored: str, byte: int) -> str:
    head, blob = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[byte] ^= 0x01
    return f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


def test_ciphertext_carries_version_and_key_id_and_hides_the_value():
    stored = Cipher(K1).encrypt(SECRET, *WHERE)
    assert re.fullmatch(rf"enc:1:{key_id(K1)}:[A-Za-z0-9_-]+", stored)
    assert SECRET not in stored
    assert stored_key_id(stored) == key_id(K1)
    # iv (12) + ciphertext (len) + tag (16)
    blob = stored.rsplit(":", 1)[1]
    assert len(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))) == 12 + len(SECRET) + 16


def test_round_trip_and_fresh_iv_each_time():
    cipher = Cipher(K1)
    first, second = cipher.encrypt(SECRET, *WHERE), cipher.encrypt(SECRET, *WHERE)
    assert first != second
    assert cipher.decrypt(first, *WHERE) == cipher.decrypt(second, *WHERE) == SECRET


@pytest.mark.parametrize("elsewhere", [
    ("connections", "credentials_enc", "uid-2"),      # another row
    ("connections", "other_field", "uid-1"),          # another column
    ("environment_variables", "credentials_enc", "uid-1"),  # another table
])
def test_a_ciphertext_moved_to_another_record_or_field_fails(elsewhere):
    stored = Cipher(K1).encrypt(SECRET, *WHERE)
    with pytest.raises(DecryptionError, match="failed authentication"):
        Cipher(K1).decrypt(stored, *elsewhere)


@pytest.mark.parametrize("byte", [0, 11, 12, 12 + len(SECRET) - 1, 12 + len(SECRET) + 15])
def test_a_flipped_bit_anywhere_fails(byte):
    stored = Cipher(K1).encrypt(SECRET, *WHERE)
    with pytest.raises(DecryptionError) as info:
        Cipher(K1).decrypt(flip_bit(stored, byte), *WHERE)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("broken", ["enc:1:abc", "enc:2:{kid}:AAAA", "enc:1:{kid}:@@@", "enc:1:{kid}:", "garbage"])
def test_malformed_values_raise_decryption_error_only(broken):
    with pytest.raises(DecryptionError):
        Cipher(K1).decrypt(broken.format(kid=key_id(K1)), *WHERE)


def test_an_unknown_key_is_named_by_id_not_by_value():
    stored = Cipher(K2).encrypt(SECRET, *WHERE)
    with pytest.raises(DecryptionError) as info:
        Cipher(K1).decrypt(stored, *WHERE)
    message = str(info.value)
    assert key_id(K2) in message and "not configured" in message
    assert base64.b64encode(K2).decode() not in message and stored not in message


def test_old_keys_decrypt_but_only_the_primary_encrypts():
    old = Cipher(K1).encrypt(SECRET, *WHERE)
    rotating = Cipher(K2, (K1,))
    assert rotating.decrypt(old, *WHERE) == SECRET
    assert stored_key_id(rotating.encrypt(SECRET, *WHERE)) == key_id(K2)
    assert rotating.key_ids == (key_id(K2), key_id(K1))
    assert rotating.needs_rewrite(old)
    assert not rotating.needs_rewrite(rotating.encrypt(SECRET, *WHERE))


def test_without_a_key_values_are_stored_marked_plain():
    cipher = Cipher(None)
    stored = cipher.encrypt(SECRET, *WHERE)
    assert stored == "plain:" + SECRET
    assert cipher.decrypt(stored, *WHERE) == SECRET
    assert not cipher.needs_rewrite(stored)
    assert Cipher(K1).needs_rewrite(stored)
    assert Cipher(K1).decrypt(stored, *WHERE) == SECRET  # readable while an upgrade runs


def test_lookup_hashes_are_keyed_and_cover_the_whole_ring():
    key = "4a0f4c1e-1c7e-4b8e-9d6a-0c1f2e3d4b5a"
    assert Cipher(K1).lookup_hash(key) != Cipher(K2).lookup_hash(key)
    assert Cipher(K1).lookup_hash(key) != Cipher(None).lookup_hash(key)
    assert key not in Cipher(K1).lookup_hash(key)
    rotating = Cipher(K2, (K1,))
    assert rotating.lookup_hashes(key) == [Cipher(K2).lookup_hash(key), Cipher(K1).lookup_hash(key)]
    assert rotating.lookup_hash(key) == Cipher(K2).lookup_hash(key)
