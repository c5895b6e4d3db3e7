"""Encryption bound to its column in one place (issue 16): every encrypted column's values are
sealed by the model helpers to (table, column, row uid) — opened there, refused in any other row or
column — the columns exist in the migrated schema, and no other module calls the cipher with a
binding of its own (the at-rest verifier, which is not a column of secrets, excepted)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from peewee import SqliteDatabase

from common.crypto import Cipher, DecryptionError
from services.store import migrations
from services.store.db import database
from services.store.models import ENCRYPTED_FIELDS, Connection

ROOT = Path(__file__).resolve().parents[2]
CIPHER = Cipher(secrets.token_bytes(32))


@pytest.mark.parametrize(("model", "field"), ENCRYPTED_FIELDS,
                         ids=[f"{m._meta.table_name}.{f}" for m, f in ENCRYPTED_FIELDS])
def test_each_encrypted_column_is_bound_to_its_table_column_and_row(model, field):
    row = model(uid="row-1")
    stored = row.seal(CIPHER, field, "canary-value")
    assert getattr(row, field) == stored and "canary-value" not in stored
    assert row.unseal(CIPHER, field) == "canary-value"
    assert CIPHER.decrypt(stored, model._meta.table_name, field, "row-1") == "canary-value"
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(stored, model._meta.table_name, field, "row-2")  # another row
    others = [f for m, f in ENCRYPTED_FIELDS if m is model and f != field] or ["elsewhere_enc"]
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(stored, model._meta.table_name, others[0], "row-1")  # another column
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(stored, "another_table", field, "row-1")
    moved = model(uid="row-2")
    setattr(moved, field, stored)  # a ciphertext copied into another row does not open there
    with pytest.raises(DecryptionError):
        moved.unseal(CIPHER, field)
    assert model(uid="row-3").unseal(CIPHER, field) is None and row.seal(CIPHER, field, None) is None


def test_the_encrypted_columns_exist_in_the_migrated_schema(tmp_path):
    db = SqliteDatabase(str(tmp_path / "schema.db"))
    database.initialize(db)
    migrations.migrate(db)
    for model, field in ENCRYPTED_FIELDS:
        columns = {c.name for c in db.get_columns(model._meta.table_name)}
        assert field in columns, f"{model._meta.table_name}.{field}"


def test_a_column_that_is_not_encrypted_cannot_be_sealed():
    with pytest.raises(ValueError, match="connections.metadata is not an encrypted column"):
        Connection(uid="x").seal(CIPHER, "metadata", "v")


def test_no_other_module_binds_a_ciphertext_by_hand():
    allowed = {"common/crypto.py", "services/store/models.py", "services/store/atrest.py"}
    call = re.compile(r"\bcipher\.(encrypt|decrypt)\(")
    offenders = []
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("common/**/*.py"), *ROOT.glob("gateway/**/*.py")]:
        relative = path.relative_to(ROOT).as_posix()
        if relative not in allowed and call.search(path.read_text()):
            offenders.append(relative)
    assert offenders == []
    verifier_only = [line for line in (ROOT / "services/store/atrest.py").read_text().splitlines()
                     if call.search(line)]
    assert len(verifier_only) == 2 and all("VERIFIER" in line for line in verifier_only)
