"""The admin CLI (`python -m services.store.admin`) against the running system's database."""

from __future__ import annotations

import base64
import os
import secrets

import pytest
import requests

from common.crypto import key_id
from common.identity import INTERNAL_KEY_HEADER
from tests.store import admin, raw_text


def served_variables(system) -> dict[str, str]:
    response = system.session().get(system.url + "/environment-variables")
    assert response.status_code == 200, response.text
    return {v["name"]: v["value"] for v in response.json()}


def ok(system, *args: str, stdin: str | None = None) -> list[str]:
    done = admin(system.env, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_variable_set_from_stdin_is_served_by_the_api_and_stored_encrypted(system):
    value = f"from-stdin-{secrets.token_hex(12)}"
    assert ok(system, "env-var", "set", "--env", "dev", "STDIN_VAR", "-", stdin=value + "\n") == [
        "set STDIN_VAR in dev"]
    assert served_variables(system)["STDIN_VAR"] == value
    assert value not in raw_text(system.database_url)


def test_a_variable_given_as_argument_can_be_replaced_listed_and_deleted(system):
    first, second = f"first-{secrets.token_hex(8)}", f"second-{secrets.token_hex(8)}"
    ok(system, "env-var", "set", "--env", "prod", "ARG_VAR", first)
    ok(system, "env-var", "set", "--env", "prod", "ARG_VAR", second)
    prod = system.session(system.prod_key).get(system.url + "/environment-variables").json()
    assert {v["name"]: v["value"] for v in prod}["ARG_VAR"] == second
    assert "ARG_VAR" not in served_variables(system)  # environments stay apart
    listed = admin(system.env, "env-var", "list", "--env", "prod")
    assert "ARG_VAR" in listed.stdout.splitlines() and second not in listed.stdout + listed.stderr
    text = raw_text(system.database_url)
    assert first not in text and second not in text
    assert ok(system, "env-var", "delete", "--env", "prod", "ARG_VAR") == ["deleted ARG_VAR from prod"]
    missing = admin(system.env, "env-var", "delete", "--env", "prod", "ARG_VAR")
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0


def test_environments_and_their_keys(system):
    assert ok(system, "environments", "list") == ["dev", "prod"]
    for env, secret in (("dev", system.dev_key), ("prod", system.prod_key)):
        shown = dict(line.split(": ", 1) for line in ok(system, "keys", "show", "--env", env))
        assert shown["secret_key"] == secret
        resolved = requests.post(system.service_url("store") + "/internal/keys/resolve",
                                 json={"key": shown["public_key"], "kind": "public"},
                                 headers={INTERNAL_KEY_HEADER: system.env["INTERNAL_API_KEY"]})
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["identity"]["environment"] == env


def test_encryption_status_counts_values_under_the_configured_key(system):
    lines = ok(system, "encryption", "status")
    kid = key_id(base64.b64decode(system.env["NANGO_ENCRYPTION_KEY"]))
    assert lines[0] == f"primary key id: {kid}"
    assert any(line.startswith(f"api_keys.secret_enc: {kid}=") for line in lines)
    assert not any("plaintext" in line for line in lines)
    assert ok(system, "encryption", "rotate")[-1] == f"re-encrypted 0 value(s) under key id {kid}"


@pytest.mark.parametrize(("args", "needle"), [
    (("env-var", "set", "--env", "staging", "NAME", "v"), "unknown environment 'staging'"),
    (("env-var", "set", "--env", "dev", "1BAD", "v"), "'1BAD'"),
    (("env-var", "set", "--env", "dev", "ONLY_NAME"), "required"),
    (("env-var", "list"), "--env"),
    (("frobnicate",), "invalid choice"),
    ((), "required"),
])
def test_bad_input_is_one_line_and_exit_status_2(system, args, needle):
    done = admin(system.env, *args)
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("authport admin: "), lines


def test_a_wrong_key_is_refused_in_one_line(system):
    done = admin({**system.env, "NANGO_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()},
                 "environments", "list")
    assert done.returncode == 2 and "NANGO_ENCRYPTION_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
