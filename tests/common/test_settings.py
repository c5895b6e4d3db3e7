"""The settings table: bad values stop each process at start with one line; NANGO_DB_* build the URL."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

from common.settings import SettingsError, load_settings
from tests.store import assert_refused, table_names
from tests.support.databases import PG_ADMIN_URL, create_postgres_database, drop_postgres_database
from tests.support.system import free_port, make_system

SHORT_KEY = base64.b64encode(b"sixteen byte key").decode()  # fixed: test ids must match across xdist workers
BAD_VALUES = [
    ("NANGO_ENCRYPTION_KEY", "not base64!"),
    ("NANGO_ENCRYPTION_KEY", SHORT_KEY),
    ("SERVER_PORT", "abc"),
    ("STORE_PORT", "70000"),
    ("NANGO_DB_SSL", "maybe"),
    ("WORKERS", "0"),
    ("THREADS", "-1"),
    ("NANGO_SECRET_KEY_DEV", "not-a-uuid"),
    ("NANGO_SECRET_KEY_PROD", "6f1c1d9e-8e59-11ee-b9d1-0242ac120002"),  # a UUID, but v1
    ("NANGO_SECRET_KEY", "12345"),
    ("LOG_LEVEL", "loud"),
    ("CONNECT_UI_ALLOWED_ORIGINS", "https://app.example.com/path"),
    ("CONNECT_UI_ALLOWED_ORIGINS", "*"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_malformed_value_names_its_variable_without_echoing_secrets(name, value):
    with pytest.raises(SettingsError) as info:
        load_settings({name: value})
    message = str(info.value)
    assert info.value.name == name and message.startswith(f"{name}: ")
    assert "\n" not in message
    if "KEY" in name:
        assert value not in message


def test_old_keys_need_a_primary_key():
    old = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(SettingsError, match="NANGO_ENCRYPTION_KEYS_OLD"):
        load_settings({"NANGO_ENCRYPTION_KEYS_OLD": old})
    settings = load_settings({"NANGO_ENCRYPTION_KEYS_OLD": old, "NANGO_ENCRYPTION_KEY": old})
    assert settings.NANGO_ENCRYPTION_KEYS_OLD == (base64.b64decode(old),)


def test_defaults_and_coercion():
    key = str(uuid.uuid4()).upper()
    settings = load_settings({"SERVER_PORT": " 4000 ", "NANGO_DB_SSL": "Yes", "NANGO_SECRET_KEY_STAGING": key})
    assert settings.SERVER_PORT == 4000 and settings.NANGO_DB_SSL is True and settings.WORKERS == 1
    assert settings.pinned_secret_key("staging") == key.lower()
    assert settings.database_url == "sqlite:///data/authport.db"
    assert settings.CONNECT_UI_ALLOWED_ORIGINS == ()
    origins = load_settings({"CONNECT_UI_ALLOWED_ORIGINS": "https://App.example.com, http://127.0.0.2:8080,"})
    assert origins.CONNECT_UI_ALLOWED_ORIGINS == ("https://app.example.com", "http://127.0.0.2:8080")


def test_nango_db_variables_build_the_postgres_url():
    settings = load_settings({"NANGO_DB_HOST": "db.internal", "NANGO_DB_PORT": "6543", "NANGO_DB_USER": "app user",
                              "NANGO_DB_PASSWORD": "p@ss/word", "NANGO_DB_NAME": "authport", "NANGO_DB_SSL": "true"})
    assert settings.database_url == "postgresql://app%20user:p%40ss%2Fword@db.internal:6543/authport?sslmode=require"
    explicit = load_settings({"NANGO_DB_HOST": "db.internal", "NANGO_DATABASE_URL": "postgresql://x@y/z"})
    assert explicit.database_url == "postgresql://x@y/z"


@pytest.fixture()
def base_env(tmp_path):
    return make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}").env


@pytest.mark.parametrize("module", ["services.store", "gateway"])
@pytest.mark.parametrize(("name", "value"), [v for v in BAD_VALUES if v[0] not in ("THREADS", "STORE_PORT")])
def test_each_process_refuses_a_malformed_value_in_one_line(base_env, module, name, value):
    line = assert_refused(module, {**base_env, name: value}, name)
    if "KEY" in name:
        assert value not in line


def pg_parts() -> dict[str, str]:
    admin = urlparse(PG_ADMIN_URL)
    parts = {"NANGO_DB_HOST": admin.hostname or "127.0.0.1", "NANGO_DB_PORT": str(admin.port or 5432),
             "NANGO_DB_USER": admin.username or "postgres"}
    if admin.password:
        parts["NANGO_DB_PASSWORD"] = admin.password
    return parts


def test_nango_db_variables_reach_a_real_postgres(tmp_path):
    url = create_postgres_database()
    try:
        system = make_system(tmp_path, url, NANGO_DATABASE_URL=None, **pg_parts(),
                             NANGO_DB_NAME=urlparse(url).path.lstrip("/"))
        system.start()
        try:
            response = system.session().get(system.url + "/integrations")
            assert response.status_code == 200, response.text
        finally:
            system.stop()
        assert {"accounts", "environments", "api_keys", "connections"} <= set(table_names(url))
    finally:
        drop_postgres_database(url)


def test_an_unreachable_postgres_stops_the_store_in_one_line(base_env):
    env = {k: v for k, v in base_env.items() if k != "NANGO_DATABASE_URL"}
    env.update(pg_parts(), NANGO_DB_PORT=str(free_port()), NANGO_DB_PASSWORD="hunter2-secret")
    line = assert_refused("services.store", env, "cannot use the database")
    assert "hunter2-secret" not in line


def test_an_unusable_sqlite_path_stops_the_store_in_one_line(base_env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**base_env, "NANGO_DATABASE_URL": f"sqlite:///{blocker}/sub/authport.db"}
    assert_refused("services.store", env, "cannot use the database")


def test_a_database_that_refuses_the_login_stops_the_store_in_one_line(base_env):
    env = {k: v for k, v in base_env.items() if k != "NANGO_DATABASE_URL"}
    env.update(pg_parts(), NANGO_DB_USER=f"nobody_{uuid.uuid4().hex[:8]}", NANGO_DB_NAME="postgres")
    assert_refused("services.store", env, "cannot use the database")


@pytest.mark.parametrize(("module", "variable"), [("gateway", "SERVER_PORT"), ("services.store", "STORE_PORT")])
def test_a_port_in_use_stops_the_process_in_one_line(base_env, module, variable):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_refused(module, {**base_env, variable: port}, variable, port)
