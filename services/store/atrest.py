"""Encryption of the store's secrets at rest: start-up checks, upgrade and re-encryption.

The `authport_meta` row `encryption_verifier` holds a known value encrypted under the key that
encrypted the data. It tells, before anything is touched, whether the configured key can read
this database.
"""

from __future__ import annotations

import logging

from common.crypto import Cipher, DecryptionError, stored_key_id
from services.store.migrations import write_transaction
from services.store.models import ENCRYPTED_FIELDS, ApiKey, Meta

log = logging.getLogger("authport.store")

VERIFIER = "encryption_verifier"
VERIFIER_VALUE = "authport-encryption-verifier"
BATCH = 200


class EncryptionStateError(Exception):
    """The configured key does not fit the data: the store must not start."""


def _verifier(cipher: Cipher, stored: str) -> str:
    return cipher.decrypt(stored, "authport_meta", "value", VERIFIER)


def _any_ciphertext(db) -> bool:
    for model, field in ENCRYPTED_FIELDS:
        column = getattr(model, field)
        if model.select(model.id).where(column.startswith("enc:")).limit(1).exists():
            return True
    return False


def check(db, cipher: Cipher) -> None:
    """Refuse, touching nothing, when the configured key cannot read what is stored."""
    tables = set(db.get_tables())
    if "authport_meta" not in tables:
        return
    row = Meta.get_or_none(Meta.name == VERIFIER)
    if not cipher.enabled:
        if row is not None or _any_ciphertext(db):
            raise EncryptionStateError(
                "this database holds encrypted data but NANGO_ENCRYPTION_KEY is not set; "
                "start with the key that encrypted it"
            )
        return
    if row is None:
        if _any_ciphertext(db):
            raise EncryptionStateError("this database holds ciphertext but no encryption verifier; refusing to guess")
        return
    try:
        if _verifier(cipher, row.value) != VERIFIER_VALUE:
            raise DecryptionError("verifier mismatch")
    except DecryptionError:
        raise EncryptionStateError(
            f"NANGO_ENCRYPTION_KEY cannot decrypt this database (its data is encrypted with key id "
            f"{stored_key_id(row.value)}, the configured key has id {cipher.primary_id}); "
            "start with the original key, or list it in NANGO_ENCRYPTION_KEYS_OLD to rotate"
        ) from None


def upgrade(db, cipher: Cipher) -> int:
    """Encrypt plaintext rows (and rows under an old key) with the primary key; resumable.

    The verifier is written first, so an interrupted run leaves a database that only the same
    key opens; the next start carries on where this one stopped. Each row is rewritten with a
    compare-and-set on its old value, so a concurrent write is never lost.
    """
    if not cipher.enabled:
        log.warning("NANGO_ENCRYPTION_KEY is not set: credentials are stored in plaintext")
        return 0
    with write_transaction(db):
        row = Meta.get_or_none(Meta.name == VERIFIER)
        if row is None or stored_key_id(row.value) != cipher.primary_id:
            value = cipher.encrypt(VERIFIER_VALUE, "authport_meta", "value", VERIFIER)
            Meta.insert(name=VERIFIER, value=value).on_conflict(
                conflict_target=[Meta.name], update={Meta.value: value}
            ).execute()
    rewritten = 0
    for model, field in ENCRYPTED_FIELDS:
        rewritten += _rewrite_column(db, cipher, model, field)
    if rewritten:
        log.info("encrypted %d stored value(s) with key id %s", rewritten, cipher.primary_id)
    return rewritten


def _rewrite_column(db, cipher: Cipher, model, field: str) -> int:
    column = getattr(model, field)
    table = model._meta.table_name
    stale = column.startswith("plain:") | (
        column.startswith("enc:") & ~column.startswith(f"enc:1:{cipher.primary_id}:")
    )
    count, last_id = 0, 0
    while True:
        rows = list(model.select(model.id, model.uid, column).where(stale & (model.id > last_id))
                    .order_by(model.id).limit(BATCH))
        if not rows:
            return count
        with write_transaction(db):
            for row in rows:
                old = getattr(row, field)
                plain = cipher.decrypt(old, table, field, row.uid)
                changes = {column: cipher.encrypt(plain, table, field, row.uid)}
                if model is ApiKey:
                    changes[ApiKey.lookup_hash] = cipher.lookup_hash(plain)
                count += model.update(changes).where((model.id == row.id) & (column == old)).execute()
        last_id = rows[-1].id
