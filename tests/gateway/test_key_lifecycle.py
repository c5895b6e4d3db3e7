"""Key lifecycle through real processes: rotation, revocation and named keys, through the API and
the admin CLI, seen by two gateway processes (two workers each) sharing the real Redis; and by
one gateway without Redis. Each test works in an account of its own, made with the admin CLI."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
import requests

from common.identity import INTERNAL_KEY_HEADER, Identity
from tests.store import admin, raw_text
from tests.support.databases import (
    REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    raw_rows,
    unavailable,
)
from tests.support.system import make_system

UNKNOWN = "unknown_account"
WARM_UPS = 6  # requests per gateway before a change, so that both workers of each have the key cached


def call(url: str, key: str, method: str = "GET", path: str = "/integrations", body=None) -> requests.Response:
    """One request on a new connection (so that requests spread over the gateway's workers)."""
    with requests.Session() as http:
        http.trust_env = False
        return http.request(method, url + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def expect(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: requests.Response) -> bool:
    return response.status_code == 401 and response.json()["error"]["code"] == UNKNOWN


def warm(urls: list[str], *keys: str) -> None:
    for url in urls:
        for key in keys:
            for _ in range(WARM_UPS):
                expect(call(url, key), 200)


def new_account(system, plan: str = "growth") -> tuple[str, dict[tuple[str, str], str]]:
    """An account made by the admin CLI; its keys by (environment, kind)."""
    name = f"acct-{uuid.uuid4().hex[:10]}"
    done = admin(system.env, "accounts", "create", name, "--plan", plan)
    assert done.returncode == 0, done.stderr
    keys = {}
    for line in done.stdout.splitlines()[1:]:
        label, key = line.split(": ")
        env, kind = label.split(" ")
        keys[(env, kind.removesuffix("_key"))] = key
    return name, keys


def cli_key(system, *args: str) -> str:
    done = admin(system.env, "keys", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split(": ")[1]


def listing(url: str, key: str) -> list[dict]:
    return expect(call(url, key, path="/environment/keys"), 200)["data"]


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def cluster(request, tmp_path_factory):
    """Store, auth, proxy and two gateways, every process with two workers, sharing the real Redis."""
    prefix = f"t-keys-{uuid.uuid4().hex}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    tmp_dir = tmp_path_factory.mktemp(f"keys-{request.param}")
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    system = make_system(tmp_dir, url, NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, WORKERS="2",
                         AUTH_FAILURE_LIMIT="100000")
    try:
        system.start()
        system.urls = [system.url, system.add_gateway("gateway-2")]
        yield system
    finally:
        system.stop()
        redis.Redis.from_url(REDIS_URL).delete(f"{prefix}:keys:epoch")
        if request.param == "postgres":
            drop_postgres_database(url)


def test_rotation_through_the_api_fails_the_old_key_at_once_on_every_gateway(cluster):
    _, keys = new_account(cluster)
    old, prod = keys[("dev", "secret")], keys[("prod", "secret")]
    warm(cluster.urls, old, prod)
    data = expect(call(cluster.urls[1], old, "POST", "/environment/keys/default/rotate"), 200)["data"]
    assert set(data) == {"name", "kind", "key", "created_at"}
    assert data["name"] == "default" and data["kind"] == "secret" and data["key"] != old
    for url in cluster.urls:  # the very next request, on each gateway, then a few more
        assert all(refused(call(url, old)) for _ in range(WARM_UPS)), url
    for url in cluster.urls:
        assert all(call(url, data["key"]).status_code == 200 for _ in range(WARM_UPS))
        assert call(url, prod).status_code == 200  # another environment is not touched
    entries = [e for e in listing(cluster.url, data["key"]) if e["kind"] == "secret"]
    assert [e["name"] for e in entries] == ["default", "default"]
    assert entries[0]["revoked_at"] is not None and entries[1]["revoked_at"] is None
    assert old not in raw_text(cluster.database_url) and data["key"] not in raw_text(cluster.database_url)


def test_rotation_through_the_cli_fails_the_old_key_at_once_on_every_gateway(cluster):
    name, keys = new_account(cluster)
    old, other = keys[("prod", "secret")], keys[("dev", "secret")]
    warm(cluster.urls, old, other)
    new = cli_key(cluster, "rotate", "--env", "prod", "--account", name)
    assert new != old
    for url in cluster.urls:
        assert all(refused(call(url, old)) for _ in range(WARM_UPS)), url
    for url in cluster.urls:
        assert all(call(url, new).status_code == 200 for _ in range(WARM_UPS))
        assert call(url, other).status_code == 200
        assert call(url, cluster.dev_key).status_code == 200  # nor another account


def test_revocation_through_the_api_and_the_cli_fails_the_key_at_once_on_every_gateway(cluster):
    name, keys = new_account(cluster)
    default = keys[("dev", "secret")]
    ci = expect(call(cluster.url, default, "POST", "/environment/keys", {"name": "ci"}), 201)["data"]["key"]
    ops = expect(call(cluster.url, default, "POST", "/environment/keys", {"name": "ops"}), 201)["data"]["key"]
    warm(cluster.urls, default, ci, ops)
    revoked = expect(call(cluster.urls[0], default, "DELETE", "/environment/keys/ci"), 200)["data"]
    assert revoked["name"] == "ci" and revoked["revoked_at"] is not None and "key" not in revoked
    for url in cluster.urls:
        assert all(refused(call(url, ci)) for _ in range(WARM_UPS)), url
        assert call(url, ops).status_code == 200
    done = admin(cluster.env, "keys", "revoke", "--env", "dev", "--account", name, "--name", "ops")
    assert done.returncode == 0 and done.stdout.strip() == f"revoked secret key 'ops' of {name}/dev", done.stderr
    for url in cluster.urls:
        assert all(refused(call(url, ops)) for _ in range(WARM_UPS)), url
        assert call(url, default).status_code == 200


def test_named_keys_work_side_by_side_and_record_their_last_use(cluster):
    name, keys = new_account(cluster)
    default = keys[("dev", "secret")]
    made = {n: expect(call(cluster.url, default, "POST", "/environment/keys", {"name": n}), 201)["data"]
            for n in ("ci", "deploy.v2", "spare")}
    assert made["ci"]["kind"] == "secret" and made["ci"]["created_at"].endswith("Z")
    for _ in range(3):
        for url in cluster.urls:
            assert call(url, made["ci"]["key"]).status_code == 200
            assert call(url, made["deploy.v2"]["key"]).status_code == 200
    entries = {e["name"]: e for e in listing(cluster.url, default) if e["kind"] == "secret"}
    assert set(entries) == {"default", "ci", "deploy.v2", "spare"}
    assert entries["ci"]["last_used_at"] and entries["deploy.v2"]["last_used_at"] and entries["default"]["last_used_at"]
    assert entries["spare"]["last_used_at"] is None
    assert all(set(e) == {"name", "kind", "created_at", "last_used_at", "revoked_at"} for e in entries.values())
    rotated = expect(call(cluster.url, made["ci"]["key"], "POST", "/environment/keys/ci/rotate"), 200)["data"]
    for url in cluster.urls:
        assert refused(call(url, made["ci"]["key"]))
        assert call(url, rotated["key"]).status_code == 200
        assert call(url, made["deploy.v2"]["key"]).status_code == 200  # a sibling key is not touched
    cli_made = cli_key(cluster, "create", "--env", "dev", "--account", name, "--name", "from-cli")
    assert call(cluster.urls[1], cli_made).status_code == 200


def test_keys_of_one_environment_never_affect_another(cluster):
    _, keys = new_account(cluster)
    _, others = new_account(cluster)
    dev, prod = keys[("dev", "secret")], keys[("prod", "secret")]
    expect(call(cluster.url, dev, "POST", "/environment/keys", {"name": "ci"}), 201)
    assert "ci" not in {e["name"] for e in listing(cluster.url, prod)}
    for key in (prod, others[("dev", "secret")]):
        body = expect(call(cluster.url, key, "DELETE", "/environment/keys/ci"), 404)
        assert body["error"]["code"] == "not_found" and body["error"]["message"]
        expect(call(cluster.url, key, "POST", "/environment/keys/ci/rotate"), 404)
    # the same name may live in another environment
    expect(call(cluster.url, prod, "POST", "/environment/keys", {"name": "ci"}), 201)
    expect(call(cluster.url, dev, "DELETE", "/environment/keys/ci"), 200)
    assert [e["revoked_at"] is None for e in listing(cluster.url, prod) if e["name"] == "ci"] == [True]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/environment/keys", {"name": "default"}, 409, "duplicate_key_name"),
    ("POST", "/environment/keys", {"name": "has space"}, 400, "invalid_body"),
    ("POST", "/environment/keys", {"name": "x" * 65}, 400, "invalid_body"),
    ("POST", "/environment/keys", {"name": ""}, 400, "invalid_body"),
    ("POST", "/environment/keys", {"name": "ok", "key": "mine"}, 400, "invalid_body"),
    ("POST", "/environment/keys", ["ok"], 400, "invalid_body"),
    ("POST", "/environment/keys", None, 400, "invalid_body"),
    ("DELETE", "/environment/keys/default", None, 409, "last_secret_key"),
    ("DELETE", "/environment/keys/nope", None, 404, "not_found"),
    ("POST", "/environment/keys/nope/rotate", None, 404, "not_found"),
    ("DELETE", "/environment/keys/" + "y" * 65, None, 400, "invalid_uri_params"),
    ("PUT", "/environment/keys", {"name": "x"}, 405, "method_not_allowed"),
])
def test_bad_requests_get_one_json_error(cluster, method, path, body, status, code):
    _, keys = new_account(cluster)
    response = call(cluster.url, keys[("dev", "secret")], method, path, body)
    error = expect(response, status)["error"]
    assert error["code"] == code and error["message"], error
    assert call(cluster.url, keys[("dev", "secret")]).status_code == 200  # still the live key


def test_public_keys_rotate_and_cannot_manage_keys(cluster):
    name, keys = new_account(cluster)
    secret, old_public = keys[("dev", "secret")], keys[("dev", "public")]
    data = expect(call(cluster.url, secret, "POST", "/environment/public-key/rotate"), 200)["data"]
    assert data["kind"] == "public" and data["name"] == "default" and data["key"] != old_public
    store = cluster.service_url("store")
    internal = {INTERNAL_KEY_HEADER: cluster.env["INTERNAL_API_KEY"]}
    resolve = [requests.post(store + "/internal/keys/resolve", json={"key": k, "kind": "public"}, headers=internal)
               for k in (old_public, data["key"])]
    assert [r.status_code for r in resolve] == [404, 200]
    assert cli_key(cluster, "show", "--env", "dev", "--account", name) == data["key"]
    assert refused(call(cluster.url, data["key"], "GET", "/environment/keys"))  # the gateway takes secret keys only
    # Behind the gateway, the store refuses a caller that came with a public key.
    identity = Identity(**{**resolve[1].json()["identity"], "key_kind": "public"})
    for method, path in (("GET", "/environment/keys"), ("POST", "/environment/keys"),
                         ("POST", "/environment/keys/default/rotate"), ("DELETE", "/environment/keys/default"),
                         ("POST", "/environment/public-key/rotate")):
        response = requests.request(method, store + path, json={"name": "x"},
                                    headers={**internal, **identity.to_headers()})
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden", (path, response.text)
    assert call(cluster.url, secret).status_code == 200


ENV_BAD_BODIES = [  # (body, status, code) of POST /environments
    ({"name": "Staging"}, 400, "invalid_body"), ({"name": "a b"}, 400, "invalid_body"),
    ({"name": ""}, 400, "invalid_body"), ({"name": "x" * 256}, 400, "invalid_body"), ({"name": 5}, 400, "invalid_body"),
    ({}, 400, "invalid_body"), ({"name": "ok", "extra": 1}, 400, "invalid_body"),
    ({"name": "ok", "is_production": "yes"}, 400, "invalid_body"),
    ({"name": "prod"}, 409, "environment_already_exists"), ({"name": "dev"}, 409, "environment_already_exists"),
]


def test_environments_and_api_keys_as_nango_has_them(cluster):
    """POST/DELETE /environments and /environment/api-keys with a prod secret key, seen by two gateways."""
    account, keys = new_account(cluster)
    prod, dev = keys[("prod", "secret")], keys[("dev", "secret")]
    made = expect(call(cluster.url, prod, "POST", "/environments", {"name": "staging-1", "is_production": False}), 200)
    env_id = made["data"]["id"]
    assert made == {"data": {"id": env_id, "name": "staging-1"}} and isinstance(env_id, int)
    for body, status, code in ENV_BAD_BODIES + [({"name": "staging-1"}, 409, "environment_already_exists")]:
        assert expect(call(cluster.url, prod, "POST", "/environments", body), status)["error"]["code"] == code, body
    key = expect(call(cluster.url, prod, "POST", "/environment/api-keys",
                      {"environment_id": env_id, "display_name": "ci"}), 200)["data"]
    assert set(key) == {"id", "display_name", "scopes", "secret", "created_at"} and key["display_name"] == "ci"
    assert key["scopes"] == ["environment:*"] and key["created_at"].endswith("Z")
    again = call(cluster.url, prod, "POST", "/environment/api-keys", {"environment_id": env_id, "display_name": "ci"})
    assert expect(again, 409)["error"]["code"] == "duplicate_key_name"
    for body in ({"environment_id": 10**9, "display_name": "x"}, {"environment_id": "1", "display_name": "x"}):
        assert call(cluster.url, prod, "POST", "/environment/api-keys", body).status_code in (400, 404)
    # The new key works in the new environment only; dev does not see what it makes.
    assert expect(call(cluster.url, key["secret"], "POST", "/integrations",
                       {"unique_key": "in-staging", "provider": "github"}), 200)
    assert [i["unique_key"] for i in expect(call(cluster.url, dev), 200)["data"]] == []
    refused_delete = call(cluster.url, prod, "DELETE", f"/environments/{env_id}")
    assert expect(refused_delete, 409)["error"]["code"] == "environment_not_empty"
    expect(call(cluster.url, key["secret"], "DELETE", "/integrations/in-staging"), 200)
    second = expect(call(cluster.url, prod, "POST", "/environment/api-keys",
                         {"environment_id": env_id, "display_name": "ci-2"}), 200)["data"]
    warm(cluster.urls, key["secret"], second["secret"])
    gone = call(cluster.url, prod, "DELETE", "/environment/api-keys", {"environment_id": env_id, "key_id": key["id"]})
    assert gone.status_code == 204 and gone.content == b""
    for url in cluster.urls:
        assert refused(call(url, key["secret"])), url
        assert call(url, second["secret"]).status_code == 200
    again = call(cluster.url, prod, "DELETE", "/environment/api-keys", {"environment_id": env_id, "key_id": key["id"]})
    assert expect(again, 404)["error"]["code"] == "unknown_api_key"
    assert call(cluster.url, prod, "DELETE", f"/environments/{env_id}").status_code == 204
    for url in cluster.urls:  # a deleted environment's keys fail at once on every gateway
        assert all(refused(call(url, second["secret"])) for _ in range(WARM_UPS)), url
        assert call(url, prod).status_code == 200 and call(url, dev).status_code == 200
    assert expect(call(cluster.url, prod, "DELETE", f"/environments/{env_id}"), 404)["error"]["code"] == \
        "unknown_environment"
    assert not raw_rows(cluster.database_url, f"SELECT id FROM api_keys WHERE environment_id = {env_id}")
    prod_id = raw_rows(cluster.database_url, "SELECT e.id FROM environments e JOIN accounts a ON e.account_id = a.id "
                       f"WHERE a.name = '{account}' AND e.name = 'prod'")[0][0]
    reserved = call(cluster.url, prod, "DELETE", f"/environments/{prod_id}")
    assert expect(reserved, 400)["error"]["code"] == "reserved_environment"


def test_without_redis_rotation_through_the_api_is_immediate(tmp_path):
    system = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", AUTH_FAILURE_LIMIT="1000").start()
    try:
        old = system.dev_key
        ci = expect(call(system.url, old, "POST", "/environment/keys", {"name": "ci"}), 201)["data"]["key"]
        warm([system.url], old, ci)
        new = expect(call(system.url, ci, "POST", "/environment/keys/default/rotate"), 200)["data"]["key"]
        assert refused(call(system.url, old)) and call(system.url, new).status_code == 200
        # A start with NANGO_SECRET_KEY_DEV still holding the rotated key (the admin CLI starts like
        # the store) does not bring it back: it may have leaked.
        restarted = admin(system.env, "environments", "list")
        assert restarted.returncode == 0 and "NANGO_SECRET_KEY_DEV holds a key" in restarted.stderr
        assert old not in restarted.stdout + restarted.stderr
        assert refused(call(system.url, old)) and call(system.url, new).status_code == 200
        expect(call(system.url, new, "DELETE", "/environment/keys/ci"), 200)
        assert refused(call(system.url, ci))
        # The admin CLI cannot reach the gateway's memory: its short cache lifetime (2 s) bounds the delay.
        warm([system.url], new)
        newest = cli_key(system, "rotate", "--env", "dev")
        deadline = time.monotonic() + 3
        while not refused(call(system.url, new)):
            assert time.monotonic() < deadline, "the rotated key still works after 3 s"
            time.sleep(0.2)
        assert call(system.url, newest).status_code == 200
    finally:
        system.stop()
