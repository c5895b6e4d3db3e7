"""Encryption of the store's secrets at rest: start-up checks, upgrade, rotation, status.

The `authport_meta` row `encryption_verifier` holds a known value encrypted under the key that
encrypted the data. Together with a look at the key ids stored beside each ciphertext, it tells,
before anything is touched, whether the configured keys can read this database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from peewee import fn

from common.crypto import ENC_PREFIX, FORMAT_VERSION, PLAIN_PREFIX, Cipher, DecryptionError, stored_key_id
from services.store.migrations import write_transaction
from services.store.models import ENCRYPTED_FIELDS, ApiKey, Meta

log = logging.getLogger("authport.store")

VERIFIER = "encryption_verifier"
VERIFIER_VALUE = "authport-encryption-verifier"
BATCH = 200
KEY_HINT = "start with the key that encrypted it (NANGO_ENCRYPTION_KEY), or list it in NANGO_ENCRYPTION_KEYS_OLD"

Progress = Callable[[str, int], None]


class EncryptionStateError(Exception):
    """The configured key does not fit the data: the store must not start."""


def _prefix(kid: str) -> str:
    return f"{ENC_PREFIX}{FORMAT_VERSION}:{kid}:"


def _present_fields(db) -> list[tuple]:
    """The encrypted columns this database already has: `check` runs before migrations, so a
    column that a pending migration will add must not be queried."""
    tables = set(db.get_tables())
    present = []
    for model, field in ENCRYPTED_FIELDS:
        table = model._meta.table_name
        if table in tables and getattr(model, field).column_name in {c.name for c in db.get_columns(table)}:
            present.append((model, field))
    return present


def _any_ciphertext(fields: list[tuple]) -> bool:
    for model, field in fields:
        column = getattr(model, field)
        if model.select(model.id).where(column.startswith(ENC_PREFIX)).limit(1).exists():
            return True
    return False


def _foreign_key_id(cipher: Cipher, fields: list[tuple]) -> str | None:
    """Key id of some stored ciphertext that no configured key can open, else None (one scan per column)."""
    for model, field in fields:
        column = getattr(model, field)
        foreign = column.startswith(ENC_PREFIX)
        for kid in cipher.key_ids:
            foreign &= ~column.startswith(_prefix(kid))
        row = model.select(column).where(foreign).first()
        if row is not None:
            return stored_key_id(getattr(row, field)) or "unknown"
    return None


def check(db, cipher: Cipher) -> None:
    """Refuse, touching nothing, when the configured keys cannot read what is stored."""
    if "authport_meta" not in set(db.get_tables()):
        return
    fields = _present_fields(db)
    row = Meta.get_or_none(Meta.name == VERIFIER)
    if not cipher.enabled:
        if row is not None or _any_ciphertext(fields):
            raise EncryptionStateError("this database holds encrypted data but NANGO_ENCRYPTION_KEY is not set; "
                                       "set it to the key that encrypted the data")
        return
    if row is None and _any_ciphertext(fields):
        raise EncryptionStateError("this database holds ciphertext but no encryption verifier; refusing to guess")
    if row is not None:
        try:
            readable = cipher.decrypt(row.value, "authport_meta", "value", VERIFIER) == VERIFIER_VALUE
        except DecryptionError:
            readable = False
        if not readable:
            raise EncryptionStateError(
                f"NANGO_ENCRYPTION_KEY cannot decrypt this database (its data is encrypted with key id "
                f"{stored_key_id(row.value)}, the configured key has id {cipher.primary_id}); {KEY_HINT}")
    foreign = _foreign_key_id(cipher, fields)
    if foreign is not None:
        raise EncryptionStateError(f"some stored secrets are encrypted with key id {foreign}, which neither "
                                   f"NANGO_ENCRYPTION_KEY nor NANGO_ENCRYPTION_KEYS_OLD holds; {KEY_HINT}")


def write_verifier(db, cipher: Cipher) -> None:
    """Record that the data is (being) encrypted under the primary key."""
    with write_transaction(db):
        row = Meta.get_or_none(Meta.name == VERIFIER)
        if row is None or stored_key_id(row.value) != cipher.primary_id:
            value = cipher.encrypt(VERIFIER_VALUE, "authport_meta", "value", VERIFIER)
            Meta.insert(name=VERIFIER, value=value).on_conflict(
                conflict_target=[Meta.name], update={Meta.value: value}
            ).execute()


def upgrade(db, cipher: Cipher, batch: int = BATCH, progress: Progress | None = None) -> int:
    """Encrypt plaintext rows (and rows under an old key) with the primary key; resumable.

    The verifier is written first, so an interrupted run leaves a database that only the same
    key opens; the next start carries on where this one stopped. Each row is rewritten with a
    compare-and-set on its old value, so a concurrent write is never lost.
    """
    if not cipher.enabled:
        log.warning("NANGO_ENCRYPTION_KEY is not set: credentials are stored in plaintext "
                    "(set it to base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
        return 0
    write_verifier(db, cipher)
    rewritten = 0
    for model, field in ENCRYPTED_FIELDS:
        rewritten += rewrite_column(db, cipher, model, field, batch, progress)
    if rewritten:
        log.info("encrypted %d stored value(s) with key id %s", rewritten, cipher.primary_id)
    return rewritten


def rewrite_column(db, cipher: Cipher, model, field: str, batch: int = BATCH, progress: Progress | None = None) -> int:
    """Re-encrypt one column's stale values under the primary key, one committed batch at a time."""
    column = getattr(model, field)
    stale = column.startswith(PLAIN_PREFIX) | (column.startswith(ENC_PREFIX)
                                                & ~column.startswith(_prefix(cipher.primary_id)))
    count, last_id = 0, 0
    while True:
        rows = list(model.select(model.id, model.uid, column).where(stale & (model.id > last_id))
                    .order_by(model.id).limit(batch))
        if not rows:
            return count
        with write_transaction(db):
            count += sum(_rewrite_row(cipher, model, field, row) for row in rows)
        last_id = rows[-1].id
        if progress is not None:
            progress(f"{model._meta.table_name}.{field}", count)


def _rewrite_row(cipher: Cipher, model, field: str, row) -> int:
    column, old = getattr(model, field), getattr(row, field)
    try:
        plain = row.unseal(cipher, field)
    except DecryptionError as exc:
        # Altered or misplaced: it cannot be read under any key, so re-encrypting is impossible.
        # Leave it (reads of it answer a clear error) rather than block every start.
        log.warning("left unreadable stored secret as is: %s", exc)
        return 0
    changes = {column: model.sealed(cipher, field, row.uid, plain)}
    if model is ApiKey:
        changes[ApiKey.lookup_hash] = cipher.lookup_hash(plain)
    return model.update(changes).where((model.id == row.id) & (column == old)).execute()


def status(db) -> dict[str, dict[str, int]]:
    """How many values of each encrypted column are plaintext or under each key id."""
    counts: dict[str, dict[str, int]] = {}
    for model, field in ENCRYPTED_FIELDS:
        column = getattr(model, field)
        head = fn.SUBSTR(column, 1, len(_prefix("x" * 12)) - 1)
        rows = (model.select(head.alias("head"), fn.COUNT(model.id).alias("n"))
                .where(column.is_null(False)).group_by(head).tuples())
        per_key: dict[str, int] = {}
        for value, n in rows:
            name = "plaintext" if value.startswith(PLAIN_PREFIX) else (stored_key_id(value + ":x") or "unknown")
            per_key[name] = per_key.get(name, 0) + n
        counts[f"{model._meta.table_name}.{field}"] = per_key
    return counts
