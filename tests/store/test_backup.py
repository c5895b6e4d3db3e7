"""Backup and restore (issue 17, docs/backup.md) on SQLite and Postgres: a backup of a live system
with encrypted connections, restored into an empty database, serves the same credentials; a
restore refuses, changing nothing, without the backup's key or over a database that is not empty
(unless --force); the backup file is 0600 and holds no secret in plaintext."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import tarfile
import uuid

import pytest

from tests.api.builders import gateway
from tests.store import admin, table_names
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.system import make_system

BACKENDS = ("sqlite", "postgres")


def new_database(tmp_path, backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'authport-{uuid.uuid4().hex[:6]}.db'}"
    return create_postgres_database()


def data_of(system) -> tuple[str, str]:
    """An integration with a client secret and a connection with a token, both canaries."""
    api = gateway(system)
    secret, token = "client-canary-" + secrets.token_hex(6), "token-canary-" + secrets.token_hex(6)
    assert api.post("/integrations", json={"unique_key": "gh", "provider": "github", "credentials": {
        "type": "OAUTH2", "client_id": "cid", "client_secret": secret}}).status_code == 200
    assert api.post("/connections", json={"provider_config_key": "gh", "connection_id": "c1", "credentials": {
        "type": "OAUTH2", "access_token": token, "expires_at": "2099-01-01T00:00:00Z"}}).status_code == 201
    return secret, token


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backup_restored_into_an_empty_database_serves_the_same_credentials(tmp_path, backend):
    source_url = new_database(tmp_path, backend)
    target_url = new_database(tmp_path, backend)
    system = make_system(tmp_path / "live", source_url).start()
    try:
        secret, token = data_of(system)
        file = tmp_path / "authport-backup.tar.gz"
        done = admin(system.env, "backup", str(file))  # online: the system keeps running
        assert done.returncode == 0, done.stderr
        manifest = json.loads(done.stdout.splitlines()[0])
        assert manifest["backend"] == backend and len(manifest["key_ids"]) == 1
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600
        with tarfile.open(file) as archive:
            assert sorted(archive.getnames()) == sorted(["manifest.json", "authport.db" if backend == "sqlite"
                                                         else "authport.pgdump"])
            if backend == "sqlite":
                raw = archive.extractfile("authport.db").read()
                assert secret.encode() not in raw and token.encode() not in raw  # encrypted in the copy
        again = admin(system.env, "backup", str(file))
        assert again.returncode == 1 and "exists" in again.stderr  # never overwritten
    finally:
        system.stop()

    target_env = {**system.env, "NANGO_DATABASE_URL": target_url}
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    wrong = admin({**target_env, "NANGO_ENCRYPTION_KEY": other_key}, "restore", str(file))
    assert wrong.returncode == 1 and manifest["key_ids"][0] in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert_empty(target_url, backend)  # nothing was changed
    occupied = admin(system.env, "restore", str(file))  # into the source, which holds data
    assert occupied.returncode == 1 and "--force" in occupied.stderr

    restored = admin(target_env, "restore", str(file))
    assert restored.returncode == 0, restored.stderr
    revived = make_system(tmp_path / "restored", target_url, **{k: system.env[k] for k in (
        "NANGO_ENCRYPTION_KEY", "NANGO_SECRET_KEY_DEV", "NANGO_SECRET_KEY_PROD", "INTERNAL_API_KEY")}).start()
    try:
        api = gateway(revived)
        conn = api.get("/connections/c1", params={"provider_config_key": "gh"})
        assert conn.status_code == 200 and conn.json()["credentials"]["access_token"] == token
        shown = api.get("/integrations/gh", params={"include": "credentials"}).json()["data"]
        assert shown["credentials"]["client_secret"] == secret
    finally:
        revived.stop()
        if backend == "postgres":
            drop_postgres_database(target_url)

    forced = admin(system.env, "restore", str(file), "--force")  # over the source: replaced, same data
    assert forced.returncode == 0, forced.stderr
    if backend == "postgres":
        drop_postgres_database(source_url)


def assert_empty(url: str, backend: str) -> None:
    if backend == "sqlite":
        path = url.removeprefix("sqlite:///")
        assert not os.path.exists(path) or not table_names(url)
    else:
        assert table_names(url) == []


def test_a_file_that_is_not_a_backup_is_refused(tmp_path):
    url = new_database(tmp_path, "sqlite")
    system = make_system(tmp_path, url)
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tar")
    done = admin(system.env, "restore", str(bogus))
    assert done.returncode == 1 and "cannot read" in done.stderr and "Traceback" not in done.stderr
    assert not os.path.exists(url.removeprefix("sqlite:///"))
