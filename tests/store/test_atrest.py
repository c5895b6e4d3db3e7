"""Encryption at rest, read from the raw database of both backends, through real processes."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets

import pytest

from common.crypto import Cipher, key_id
from common.settings import load_settings
from services.store import atrest, keys
from services.store.app import open_configured_database
from tests.store import admin, assert_refused, encrypted_values, raw_dump, raw_execute, raw_text
from tests.support.databases import raw_rows
from tests.support.system import System, make_system


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def kid(b64_key: str) -> str:
    return key_id(base64.b64decode(b64_key))


def populate(system: System) -> dict[str, str]:
    """One of every kind of stored secret, created the way users create them; returns them by name."""
    made = {name: f"{name}-{secrets.token_hex(12)}" for name in (
        "client_secret", "client_secret_2", "webhook_secret", "access_token", "refresh_token", "access_token_b",
        "env_value", "env_value_2")}
    http, url = system.session(), system.url
    for key, secret in (("gh", made["client_secret"]), ("gh2", made["client_secret_2"])):
        response = http.post(url + "/integrations", json={"provider": "github", "unique_key": key, "credentials": {
            "type": "OAUTH2", "client_id": f"id-{key}", "client_secret": secret,
            "webhook_secret": made["webhook_secret"]}})
        assert response.status_code == 200, response.text
    tokens = {"a": {"access_token": made["access_token"], "refresh_token": made["refresh_token"]},
              "b": {"access_token": made["access_token_b"]}}
    for conn, given in tokens.items():
        credentials = {"type": "OAUTH2", **given}
        response = http.post(url + "/connections", json={"provider_config_key": "gh", "connection_id": conn,
                                                         "credentials": credentials})
        assert response.status_code == 201, response.text
    for name, value in (("API_TOKEN", made["env_value"]), ("OTHER", made["env_value_2"])):
        done = admin(system.env, "env-var", "set", "--env", "dev", name, "-", stdin=value + "\n")
        assert done.returncode == 0, done.stderr
    return made


def every_secret(system: System, made: dict[str, str]) -> list[str]:
    return [*made.values(), system.dev_key, system.prod_key]


def assert_readable(system: System, made: dict[str, str]) -> None:
    """Every secret comes back in the clear through the API, with both environments' keys working."""
    http, url = system.session(), system.url
    conn = http.get(url + "/connections/a", params={"provider_config_key": "gh", "refresh_token": "true"})
    assert conn.status_code == 200, conn.text
    assert conn.json()["credentials"]["access_token"] == made["access_token"]
    assert conn.json()["credentials"]["refresh_token"] == made["refresh_token"]
    integration = http.get(url + "/integrations/gh", params={"include": "credentials"})
    assert integration.json()["data"]["credentials"]["client_secret"] == made["client_secret"]
    variables = {v["name"]: v["value"] for v in http.get(url + "/environment-variables").json()}
    assert variables == {"API_TOKEN": made["env_value"], "OTHER": made["env_value_2"]}
    assert system.session(system.prod_key).get(url + "/integrations").status_code == 200


def assert_all_encrypted_under(system: System, made: dict[str, str], b64_key: str) -> None:
    dump = raw_text(system.database_url)
    for secret in every_secret(system, made):
        assert secret not in dump
    values = encrypted_values(system.database_url)
    assert len(values) >= 4 + 2 + 2 + 2 + 2  # keys, client secrets, webhook secrets, connections, variables
    pattern = re.compile(rf"enc:1:{kid(b64_key)}:[A-Za-z0-9_-]+")
    assert [v for v in values if not pattern.fullmatch(v)] == []


@pytest.fixture()
def system(tmp_path, database_url):
    configured = make_system(tmp_path, database_url)
    yield configured
    configured.stop()


def test_no_secret_is_stored_readable_and_each_ciphertext_names_its_key(system):
    made = populate(system.start())
    assert_all_encrypted_under(system, made, system.env["NANGO_ENCRYPTION_KEY"])
    assert_readable(system, made)
    for secret in every_secret(system, made):
        assert secret not in system.logs()


def copy_value(url: str, table: str, column: str, source: str, target: str, key: str = "connection_id") -> None:
    raw_execute(url, f"UPDATE {table} SET {column} = (SELECT {column} FROM {table} WHERE {key} = '{source}') "
                  f"WHERE {key} = '{target}'")


def flip_a_bit(url: str, connection_id: str) -> None:
    stored = raw_rows(url, f"SELECT credentials_enc FROM connections WHERE connection_id = '{connection_id}'")[0][0]
    head, blob = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[len(raw) // 2] ^= 0x04
    changed = f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    raw_execute(url, f"UPDATE connections SET credentials_enc = '{changed}' WHERE connection_id = '{connection_id}'")


def assert_decryption_failed(response, made: dict[str, str]) -> None:
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "decryption_failed"
    assert "cannot be decrypted" in error["message"]
    for secret in made.values():
        assert secret not in response.text
    assert "enc:1:" not in response.text


def test_a_moved_or_altered_ciphertext_answers_a_clear_json_error(system):
    made = populate(system.start())
    http, url, db = system.session(), system.url, system.database_url
    copy_value(db, "connections", "credentials_enc", "a", "b")
    assert_decryption_failed(http.get(url + "/connections/b", params={"provider_config_key": "gh"}), made)
    assert http.get(url + "/connections/a", params={"provider_config_key": "gh"}).status_code == 200
    flip_a_bit(db, "a")
    assert_decryption_failed(http.get(url + "/connections/a", params={"provider_config_key": "gh"}), made)
    copy_value(db, "integrations", "client_secret_enc", "gh", "gh2", key="unique_key")
    assert_decryption_failed(http.get(url + "/integrations/gh2", params={"include": "credentials"}), made)
    copy_value(db, "environment_variables", "value_enc", "API_TOKEN", "OTHER", key="name")
    assert_decryption_failed(http.get(url + "/environment-variables"), made)
    logs = system.logs()
    assert "stored secret unreadable" in logs and "Traceback" not in logs
    for secret in every_secret(system, made):
        assert secret not in logs


def without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("NANGO_ENCRYPTION_KEY", "NANGO_ENCRYPTION_KEYS_OLD")}


def test_a_missing_or_different_key_refuses_to_start_and_touches_nothing(system):
    made = populate(system.start())
    system.stop()
    before = raw_dump(system.database_url)
    assert_refused("services.store", without_key(system.env), "NANGO_ENCRYPTION_KEY")
    assert_refused("services.store", {**system.env, "NANGO_ENCRYPTION_KEY": new_key()}, "NANGO_ENCRYPTION_KEY")
    assert raw_dump(system.database_url) == before
    assert_readable(system.start(), made)


def warnings_in(system: System) -> int:
    return (system.log_dir / "store.log").read_text().count("NANGO_ENCRYPTION_KEY is not set")


def test_without_a_key_plaintext_and_a_warning_then_a_key_encrypts_every_row(tmp_path, database_url):
    system = make_system(tmp_path, database_url, NANGO_ENCRYPTION_KEY=None)
    try:
        made = populate(system.start())
        assert made["access_token"] in raw_text(database_url)  # Nango's documented behaviour without a key
        assert all(v.startswith("plain:") for v in encrypted_values(database_url))
        system.stop()
        assert warnings_in(system.start()) == 2  # at every start
        system.stop()
        system.env["NANGO_ENCRYPTION_KEY"] = new_key()
        system.start()
        assert warnings_in(system) == 2
        assert_all_encrypted_under(system, made, system.env["NANGO_ENCRYPTION_KEY"])
        assert_readable(system, made)  # API keys still resolve: their lookup hashes were rewritten too
    finally:
        system.stop()


class Interrupted(Exception):
    pass


def stop_after_first_batch(_column: str, _count: int) -> None:
    raise Interrupted


@contextlib.contextmanager
def database_of(env: dict[str, str]):
    """The store's database opened in this process, with the settings of `env`."""
    settings = load_settings(env)
    db = open_configured_database(settings)
    try:
        with db.connection_context():
            yield db, Cipher(settings.NANGO_ENCRYPTION_KEY, settings.NANGO_ENCRYPTION_KEYS_OLD)
    finally:
        getattr(db, "close_all", lambda: None)()


def test_an_interrupted_upgrade_resumes_at_the_next_start(tmp_path, database_url):
    system = make_system(tmp_path, database_url, NANGO_ENCRYPTION_KEY=None)
    try:
        made = populate(system.start())
        system.stop()
        system.env["NANGO_ENCRYPTION_KEY"] = new_key()
        with database_of(system.env) as (db, cipher), pytest.raises(Interrupted):
            atrest.upgrade(db, cipher, batch=1, progress=stop_after_first_batch)
        values = encrypted_values(database_url)
        assert any(v.startswith("enc:") for v in values) and any(v.startswith("plain:") for v in values)
        assert_refused("services.store", without_key(system.env), "NANGO_ENCRYPTION_KEY")
        system.start()
        assert_all_encrypted_under(system, made, system.env["NANGO_ENCRYPTION_KEY"])
        assert_readable(system, made)
    finally:
        system.stop()


def test_starting_with_a_new_key_and_the_old_one_listed_rotates_every_row(system):
    made = populate(system.start())
    system.stop()
    old, new = system.env["NANGO_ENCRYPTION_KEY"], new_key()
    system.env.update(NANGO_ENCRYPTION_KEY=new, NANGO_ENCRYPTION_KEYS_OLD=old)
    system.start()
    assert_all_encrypted_under(system, made, new)
    assert_readable(system, made)
    system.stop()
    del system.env["NANGO_ENCRYPTION_KEYS_OLD"]
    assert_readable(system.start(), made)
    system.stop()
    assert_refused("services.store", {**system.env, "NANGO_ENCRYPTION_KEY": old}, "NANGO_ENCRYPTION_KEY")


def test_an_interrupted_rotation_keeps_both_keys_needed_until_it_completes(system):
    made = populate(system.start())
    system.stop()
    old, new = system.env["NANGO_ENCRYPTION_KEY"], new_key()
    system.env.update(NANGO_ENCRYPTION_KEY=new, NANGO_ENCRYPTION_KEYS_OLD=old)
    with database_of(system.env) as (db, cipher):
        with pytest.raises(Interrupted):
            atrest.upgrade(db, cipher, batch=1, progress=stop_after_first_batch)
        # API keys resolve whichever key their lookup hash was made under.
        assert keys.resolve(cipher, system.dev_key, "secret").environment == "dev"
        assert keys.resolve(cipher, system.prod_key, "secret").environment == "prod"
    only_new = {**system.env, "NANGO_ENCRYPTION_KEYS_OLD": ""}
    line = assert_refused("services.store", only_new, "NANGO_ENCRYPTION_KEYS_OLD")
    assert kid(old) in line
    assert_refused("services.store", without_key(system.env) | {"NANGO_ENCRYPTION_KEY": old}, "NANGO_ENCRYPTION_KEY")
    system.start()
    assert_all_encrypted_under(system, made, new)
    assert_readable(system, made)
