"""Isolation, route by route: a key of another environment or another account, or a public key,
can neither read nor change anything of the owner's environment, and never sees a credential."""

from __future__ import annotations

import json

import pytest
import requests

from tests.gateway.test_key_lifecycle import new_account
from tests.store import raw_dump
from tests.support.databases import raw_rows

TOKEN = "isolation-canary-access-token"
SECRET = "isolation-canary-client-secret"
ENV_VALUE = "isolation-canary-env-value"

# (method, path, json body): every route that names one of the owner's records.
ROUTES = [
    ("GET", "/integrations", None),
    ("GET", "/integrations/owned?include=credentials", None),
    ("PATCH", "/integrations/owned", {"display_name": "taken over"}),
    ("DELETE", "/integrations/owned", None),
    ("GET", "/connections", None),
    ("GET", "/connections?connectionId=owned-conn", None),
    ("GET", "/connections/owned-conn?provider_config_key=owned&refresh_token=true", None),
    ("PATCH", "/connections/owned-conn?provider_config_key=owned", {"tags": {"owner": "someone-else"}}),
    ("DELETE", "/connections/owned-conn?provider_config_key=owned", None),
    ("POST", "/connections/metadata", {"connection_id": "owned-conn", "provider_config_key": "owned",
                                       "metadata": {"x": 1}}),
    ("PATCH", "/connections/metadata", {"connection_id": "owned-conn", "provider_config_key": "owned",
                                        "metadata": {"x": 1}}),
    ("POST", "/connections", {"provider_config_key": "owned", "connection_id": "owned-conn",
                              "credentials": {"type": "OAUTH2", "access_token": "overwritten"}}),
    ("GET", "/environment-variables", None),
    ("GET", "/environment/keys", None),
    ("DELETE", "/environment/keys/default", None),
    ("GET", "/logs", None),
    ("GET", "/logs?connection_id=owned-conn", None),
    ("GET", "/logs/1", None),  # the owner's first record (its integration's creation)
    ("POST", "/connections/owned-conn/restore?provider_config_key=owned", None),
    ("POST", "/connections/owned-conn/purge?provider_config_key=owned", None),
    ("POST", "/connections/purge", {"end_user_id": "isolation-user"}),
    ("GET", "/proxy/user", None),
    ("POST", "/proxy/repos/o/r/issues", {"title": "x"}),
]
# Proxied calls name the connection in headers.
PROXY_HEADERS = {"Connection-Id": "owned-conn", "Provider-Config-Key": "owned"}


# List routes answer 200 with the caller's own (here: none of the owner's) records.
LISTS = {
    ("GET", "/integrations"): lambda body: [i for i in body["data"] if i["unique_key"] == "owned"],
    ("GET", "/connections"): lambda body: [c for c in body["connections"] if c["connection_id"] == "owned-conn"],
    ("GET", "/environment-variables"): lambda body: [v for v in body if v["name"] == "OWNED"],
    ("GET", "/environment/keys"): lambda body: [],
    ("GET", "/logs"): lambda body: [r for r in body["data"] if "owned" in (r["integration"], r["connection_id"])],
    ("POST", "/connections/purge"): lambda body: [body] if any(body["purged"].values()) else [],
}


def call(system, key: str, method: str, path: str, body=None) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        headers = {"Authorization": f"Bearer {key}", **(PROXY_HEADERS if path.startswith("/proxy") else {})}
        return http.request(method, system.url + path, json=body, timeout=30, headers=headers)


@pytest.fixture(scope="module")
def system_env() -> dict[str, str]:
    # The matrix sends many refused keys from one address, and a few hundred requests a minute.
    return {"AUTH_FAILURE_LIMIT": "100000", "DEFAULT_PLAN": "growth"}


@pytest.fixture(scope="module")
def world(system):
    """The owner (account default, env dev) with one record of each kind, and the other callers."""
    owner = system.dev_key
    assert call(system, owner, "POST", "/integrations", {
        "unique_key": "owned", "provider": "github",
        "credentials": {"type": "OAUTH2", "client_id": "cid", "client_secret": SECRET}}).status_code == 200
    assert call(system, owner, "POST", "/connections", {
        "provider_config_key": "owned", "connection_id": "owned-conn",
        "credentials": {"type": "OAUTH2", "access_token": TOKEN, "refresh_token": TOKEN + "-refresh"}}
    ).status_code == 201
    from tests.store import admin

    assert admin(system.env, "env-var", "set", "--env", "dev", "OWNED", ENV_VALUE).returncode == 0
    _, other = new_account(system)
    shown = admin(system.env, "keys", "show", "--env", "dev").stdout
    public_key = next(line.split(": ")[1] for line in shown.splitlines() if line.startswith("public_key"))
    session = call(system, owner, "POST", "/connect/sessions", {
        "end_user": {"id": "isolation-user"}, "allowed_integrations": ["owned"]})
    assert session.status_code == 201, session.text
    return {
        "owner": owner,
        "callers": {
            "owner's connect session": session.json()["data"]["token"],
            "same account, prod": system.prod_key,
            "other account, dev": other[("dev", "secret")],
            "other account, prod": other[("prod", "secret")],
            "owner's public key": public_key,
        },
    }


def owner_rows(system) -> dict:
    """Everything stored for the owner's environment, but the bookkeeping a read may touch."""
    env_id = raw_rows(system.database_url, "SELECT e.id FROM environments e JOIN accounts a ON e.account_id = a.id "
                                           "WHERE a.name = 'default' AND e.name = 'dev'")[0][0]
    dump = raw_dump(system.database_url)
    tables = ("integrations", "connections", "environment_variables", "api_keys")
    return {t: sorted(repr(r) for r in dump[t] if env_id in r[:4]) for t in tables}


@pytest.mark.parametrize("method,path,body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
@pytest.mark.parametrize("caller", ["same account, prod", "other account, dev", "other account, prod",
                                    "owner's public key", "owner's connect session"])
def test_no_caller_reaches_another_environment(system, world, caller, method, path, body):
    before = owner_rows(system)
    response = call(system, world["callers"][caller], method, path, body)
    text = response.text
    for canary in (TOKEN, SECRET, ENV_VALUE, world["owner"]):
        assert canary not in text
    if caller == "owner's public key":
        assert response.status_code == 401, text
    elif caller == "owner's connect session":
        # A session may list its allowed integrations (never their credentials), and nothing else.
        if (method, path) == ("GET", "/integrations"):
            assert response.status_code == 200 and [i["unique_key"] for i in response.json()["data"]] == ["owned"]
        else:
            assert response.status_code in (401, 403), text
    elif (method, path.split("?")[0]) in LISTS:
        assert response.status_code == 200, text
        assert not LISTS[(method, path.split("?")[0])](response.json()), text
    else:
        assert 400 <= response.status_code < 500, text
    assert owner_rows(system) == before


def test_the_owner_still_sees_everything(system, world):
    listed = call(system, world["owner"], "GET", "/connections").json()
    assert "connections" in listed, listed
    listed = listed["connections"]
    assert [c["connection_id"] for c in listed] == ["owned-conn"]
    got = call(system, world["owner"], "GET", "/connections/owned-conn?provider_config_key=owned").json()
    assert got["credentials"]["access_token"] == TOKEN
    assert json.dumps(call(system, world["owner"], "GET", "/environment-variables").json()).count(ENV_VALUE) == 1


# Environment management (POST/DELETE /environments, /environment/api-keys) needs a secret key of the
# account's prod environment, and reaches that account's environments only.
ENV_ROUTES = [
    ("POST", "/environments", {"name": "intruder"}),
    ("DELETE", "/environments/{target}", None),
    ("POST", "/environment/api-keys", {"environment_id": "{target}", "display_name": "intruder"}),
    ("DELETE", "/environment/api-keys", {"environment_id": "{target}", "key_id": "{key}"}),
]
ENV_CALLERS = {  # caller: the status every environment route answers it
    "other account, prod": 404, "other account, dev": 403, "owner's dev secret key": 403,
    "owner's public key": 401, "revoked prod key": 401,
}


@pytest.fixture(scope="module")
def env_world(system, world):
    """A target environment of the default account with one API key, and a revoked prod key."""
    prod = system.prod_key
    target = call(system, prod, "POST", "/environments", {"name": "iso-target"})
    assert target.status_code == 200, target.text
    target_id = target.json()["data"]["id"]
    key = call(system, prod, "POST", "/environment/api-keys", {"environment_id": target_id, "display_name": "k"})
    revoked = call(system, prod, "POST", "/environment/keys", {"name": "soon-revoked"}).json()["data"]["key"]
    assert call(system, prod, "DELETE", "/environment/keys/soon-revoked").status_code == 200
    callers = {**world["callers"], "owner's dev secret key": world["owner"], "revoked prod key": revoked}
    return {"target": target_id, "key": key.json()["data"]["id"], "callers": callers}


def account_rows(system) -> list:
    """Every environment and key (but a key's last use, bookkeeping a read may touch)."""
    return [raw_rows(system.database_url, sql) for sql in (
        "SELECT id, account_id, name, uid FROM environments ORDER BY id",
        "SELECT id, environment_id, kind, name, lookup_hash, revoked_at FROM api_keys ORDER BY id")]


def filled(value, env_world):
    if isinstance(value, dict):
        return {k: filled(v, env_world) for k, v in value.items()}
    if isinstance(value, str) and value in ("{target}", "{key}"):
        return env_world[value.strip("{}")]
    return value.format(**env_world) if isinstance(value, str) else value


@pytest.mark.parametrize("method,path,body", ENV_ROUTES, ids=[f"{m} {p}" for m, p, _ in ENV_ROUTES])
@pytest.mark.parametrize("caller", list(ENV_CALLERS))
def test_environment_management_needs_the_accounts_prod_secret_key(system, env_world, caller, method, path, body):
    if caller == "other account, prod" and path == "/environments":
        pytest.skip("creates an environment in the caller's own account (checked below)")
    before = account_rows(system)
    response = call(system, env_world["callers"][caller], method, filled(path, env_world), filled(body, env_world))
    assert response.status_code == ENV_CALLERS[caller], response.text
    assert "secret" not in response.json().get("data", {})
    assert account_rows(system) == before


def test_another_accounts_prod_key_creates_in_its_own_account(system, env_world):
    made = call(system, env_world["callers"]["other account, prod"], "POST", "/environments", {"name": "iso-target"})
    assert made.status_code == 200, made.text  # the same name is free in another account
    owner_envs = raw_rows(system.database_url, "SELECT e.id FROM environments e JOIN accounts a ON e.account_id = "
                                               "a.id WHERE a.name = 'default' AND e.name = 'iso-target'")
    assert [row[0] for row in owner_envs] == [env_world["target"]] != [made.json()["data"]["id"]]
