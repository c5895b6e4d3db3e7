"""Malformed and forbidden requests: each gets its documented status and error code, as JSON,
and the database is left exactly as it was (raw table contents compared before and after)."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from urllib.parse import urlparse

import pytest

from common.identity import Identity
from tests.api.builders import OMIT, connection_body, gateway, integration_body, make_connection, make_integration
from tests.support.databases import raw_rows

TABLES = ("environments", "integrations", "connections", "environment_variables")
GH, STRIPE, CONN, PROD_GH = "seed-gh", "seed-stripe", "seed-conn", "prod-gh"
Q = f"?provider_config_key={GH}"
MIB = 1024 * 1024


def body(value) -> dict:
    return {"json": value}


def raw(data: str | bytes, content_type: str = "application/json") -> dict:
    return {"data": data, "headers": {"Content-Type": content_type}}


def conn(**overrides) -> dict:
    """An import that would overwrite the seeded connection if it were accepted."""
    return body(connection_body(GH, **{"connection_id": CONN, **overrides}))


def meta(**overrides) -> dict:
    return body({"connection_id": CONN, "provider_config_key": GH, "metadata": {"new": 1}, **overrides})


def case(name, method, path, send, status, code, error_path=None, key="dev"):
    return pytest.param(method, path, send or {}, status, code, error_path, key, id=name)


CASES = [
    # The body is not a JSON object.
    case("bad-json", "POST", "/integrations", raw('{"unique_key":'), 400, "invalid_json"),
    case("json-array", "POST", "/integrations", body([1]), 400, "invalid_body", []),
    case("json-string", "POST", "/connections", body("x"), 400, "invalid_body", []),
    case("json-null", "POST", "/connections/metadata", raw("null"), 400, "invalid_body", []),
    case("empty-body", "POST", "/integrations", raw(""), 400, "invalid_body", []),
    case("nan", "POST", "/connections", raw(json.dumps(connection_body(GH))[:-1] + ',"metadata":{"x":NaN}}'),
         400, "invalid_json"),
    case("too-deep", "POST", "/connections/metadata", raw("[" * 5000 + "]" * 5000), 400, "invalid_json"),
    case("deep-metadata", "POST", "/connections/metadata", raw('{"metadata":' + '{"a":' * 300 + "1" + "}" * 301),
         400, "invalid_json"),
    case("nul-in-id", "POST", "/connections", conn(connection_id="a\u0000b"), 400, "invalid_body",
         ["connection_id"]),
    case("lone-surrogate", "POST", "/connections/metadata", raw(b'{"connection_id":"seed-conn","provider_config_'
         b'key":"seed-gh","metadata":{"x":"\\ud800"}}'), 400, "invalid_body", ["metadata", "x"]),
    case("text-plain", "POST", "/integrations", raw(json.dumps(integration_body()), "text/plain"), 415,
         "invalid_content_type"),
    case("form", "PATCH", f"/integrations/{GH}", raw("display_name=x", "application/x-www-form-urlencoded"), 415,
         "invalid_content_type"),
    case("over-1mib", "POST", "/connections/metadata", meta(metadata={"blob": "x" * MIB}), 413,
         "payload_too_large"),
    case("over-1mib-patch", "PATCH", f"/integrations/{GH}", raw(b" " * (MIB + 1)), 413, "payload_too_large"),
    # Wrong types: nothing is coerced.
    case("key-number", "POST", "/integrations", body({"unique_key": 5, "provider": "github"}), 400,
         "invalid_body", ["unique_key"]),
    case("bool-as-text", "PATCH", f"/integrations/{GH}", body({"forward_webhooks": "no"}), 400, "invalid_body",
         ["forward_webhooks"]),
    case("metadata-text", "POST", "/connections/metadata", meta(metadata="x"), 400, "invalid_body", ["metadata"]),
    case("metadata-array", "PATCH", "/connections/metadata", meta(metadata=[1]), 400, "invalid_body", ["metadata"]),
    case("token-number", "POST", "/connections", conn(credentials={"type": "OAUTH2", "access_token": 5}), 400,
         "invalid_body", ["credentials", "access_token"]),
    case("expiry-bool", "POST", "/connections", conn(credentials={"type": "OAUTH2", "access_token": "t",
                                                                  "expires_at": True}),
         400, "invalid_body", ["credentials", "expires_at"]),
    case("expiry-text", "POST", "/connections", conn(credentials={"type": "OAUTH2", "access_token": "t",
                                                                  "expires_at": "soon"}),
         400, "invalid_body", ["credentials", "expires_at"]),
    case("tag-number", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {"team": 5}}), 400, "invalid_body",
         ["tags", "team"]),
    case("end-user-text", "PATCH", f"/connections/{CONN}{Q}", body({"end_user": "me"}), 400, "invalid_body",
         ["end_user"]),
    case("no-ids", "POST", "/connections/metadata", meta(connection_id=[]), 400, "invalid_body", ["connection_id"]),
    # Unknown fields.
    case("extra-field", "POST", "/integrations", body(integration_body(extra=1)), 400, "invalid_body", []),
    case("extra-on-patch", "PATCH", f"/integrations/{GH}", body({"display_name": "x", "bogus": 1}), 400,
         "invalid_body", []),
    case("extra-credential", "POST", "/connections", conn(credentials={"type": "OAUTH2", "access_token": "t",
                                                                       "bogus": 1}),
         400, "invalid_body", ["credentials"]),
    case("extra-on-conn-patch", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {"a": "b"}, "foo": 1}), 400,
         "invalid_body", []),
    case("extra-on-metadata", "PATCH", "/connections/metadata", meta(merge=True), 400, "invalid_body", []),
    # Oversized values.
    case("long-key", "POST", "/integrations", body(integration_body(unique_key="k" * 300)), 400, "invalid_body",
         ["unique_key"]),
    case("long-connection-id", "POST", "/connections", conn(connection_id="c" * 300), 400, "invalid_body",
         ["connection_id"]),
    case("long-display-name", "PATCH", f"/integrations/{GH}", body({"display_name": "d" * 300}), 400,
         "invalid_body", ["display_name"]),
    case("long-end-user-id", "PATCH", f"/connections/{CONN}{Q}", body({"end_user": {"id": "u" * 300}}), 400,
         "invalid_body", ["end_user", "id"]),
    case("long-tag", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {"team": "t" * 300}}), 400,
         "invalid_body", ["tags"]),
    # Invalid tags, e-mails and formats.
    case("tag-key-space", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {"a b": "x"}}), 400, "invalid_body",
         ["tags"]),
    case("tag-key-digit", "POST", "/connections", conn(tags={"1team": "x"}), 400, "invalid_body", ["tags"]),
    case("too-many-tags", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {f"k{i}": "v" for i in range(11)}}),
         400, "invalid_body", ["tags"]),
    case("bad-email", "POST", "/connections", conn(end_user={"id": "u", "email": "nope"}), 400, "invalid_body",
         ["end_user", "email"]),
    case("bad-email-patch", "PATCH", f"/connections/{CONN}{Q}", body({"end_user": {"id": "u", "email": "a@b"}}),
         400, "invalid_body", ["end_user", "email"]),
    case("key-with-slash", "POST", "/integrations", body(integration_body(unique_key="bad/key")), 400,
         "invalid_body", ["unique_key"]),
    case("id-with-newline", "POST", "/connections", conn(connection_id="a\nb"), 400, "invalid_body",
         ["connection_id"]),
    case("webhook-ftp", "PATCH", f"/connections/{CONN}{Q}", body({"webhook_url_override": "ftp://x"}), 400,
         "invalid_body", ["webhook_url_override"]),
    case("bad-scopes", "PATCH", f"/integrations/{GH}", body({"credentials": {
        "type": "OAUTH2", "client_id": "a", "client_secret": "b", "scopes": "repo user"}}), 400, "invalid_body",
        ["credentials", "scopes"]),
    # Credentials that do not fit the provider.
    case("api-key-for-github", "POST", "/connections", conn(credentials={"type": "API_KEY", "apiKey": "k"}), 400,
         "invalid_body", ["credentials", "type"]),
    case("oauth2-for-stripe", "POST", "/connections", body(connection_body(STRIPE)), 400, "invalid_body",
         ["credentials", "type"]),
    case("unknown-credential-type", "POST", "/connections", conn(credentials={"type": "BOGUS"}), 400,
         "invalid_body", ["credentials", "type"]),
    case("app-for-github", "PATCH", f"/integrations/{GH}", body({"credentials": {
        "type": "APP", "app_id": "1", "app_link": "https://x", "private_key": "k"}}), 400, "invalid_body",
        ["credentials"]),
    case("oauth-app-for-stripe", "POST", "/integrations", body(integration_body(provider="stripe")), 400,
         "invalid_body", ["credentials"]),
    # Query strings.
    case("unknown-list-param", "GET", "/connections?foo=1", None, 400, "invalid_query_params", []),
    case("limit-zero", "GET", "/connections?limit=0", None, 400, "invalid_query_params", ["limit"]),
    case("limit-text", "GET", "/connections?limit=ten", None, 400, "invalid_query_params", ["limit"]),
    case("page-negative", "GET", "/connections?page=-1", None, 400, "invalid_query_params", ["page"]),
    case("nul-filter", "GET", "/connections?connectionId=a%00b", None, 400, "invalid_query_params",
         ["connectionId"]),
    case("mixed-tags", "GET", "/connections?tags=x&tags[a]=b", None, 400, "invalid_query_params", ["tags"]),
    case("unknown-get-param", "GET", f"/connections/{CONN}{Q}&bogus=1", None, 400, "invalid_query_params", []),
    case("not-a-bool", "GET", f"/connections/{CONN}{Q}&refresh_token=maybe", None, 400, "invalid_query_params",
         ["refresh_token"]),
    case("integrations-param", "GET", "/integrations?x=1", None, 400, "invalid_query_params", []),
    case("bad-include", "GET", f"/integrations/{GH}?include=secrets", None, 400, "invalid_query_params",
         ["include"]),
    case("delete-without-key", "DELETE", f"/connections/{CONN}", None, 400, "invalid_query_params",
         ["provider_config_key"]),
    case("delete-extra-param", "DELETE", f"/connections/{CONN}{Q}&force=1", None, 400, "invalid_query_params", []),
    case("bad-key-param", "PATCH", f"/connections/{CONN}?provider_config_key=bad/key", body({"tags": {}}), 400,
         "invalid_query_params", ["provider_config_key"]),
    case("nul-in-path", "GET", f"/connections/a%00b{Q}", None, 400, "invalid_uri_params", ["connectionId"]),
    case("bad-key-in-path", "DELETE", "/integrations/bad!key", None, 400, "invalid_uri_params", ["uniqueKey"]),
    # Records that do not exist, or already exist.
    case("duplicate-key", "POST", "/integrations", body(integration_body(unique_key=GH)), 400, "invalid_body",
         ["uniqueKey"]),
    case("rename-onto-taken", "PATCH", f"/integrations/{GH}", body({"unique_key": STRIPE}), 400, "invalid_body",
         ["uniqueKey"]),
    case("rename-with-connections", "PATCH", f"/integrations/{GH}", body({"unique_key": "free-key"}), 400,
         "invalid_body", ["uniqueKey"]),
    case("metadata-partly-missing", "POST", "/connections/metadata", meta(connection_id=[CONN, "missing"]), 404,
         "unknown_connection"),
    case("import-unknown-integration", "POST", "/connections", body(connection_body("nope")), 404, "not_found"),
    case("delete-unknown-connection", "DELETE", f"/connections/missing{Q}", None, 400, "unknown_connection"),
    # Another environment's key sees and changes nothing of dev.
    case("prod-get-integration", "GET", f"/integrations/{GH}", None, 404, "not_found", key="prod"),
    case("prod-patch-integration", "PATCH", f"/integrations/{GH}", body({"display_name": "x"}), 404, "not_found",
         key="prod"),
    case("prod-delete-integration", "DELETE", f"/integrations/{GH}", None, 404, "not_found", key="prod"),
    case("dev-delete-prod-integration", "DELETE", f"/integrations/{PROD_GH}", None, 404, "not_found"),
    case("prod-get-connection", "GET", f"/connections/{CONN}{Q}", None, 400, "unknown_provider_config", key="prod"),
    case("prod-delete-connection", "DELETE", f"/connections/{CONN}{Q}", None, 400, "unknown_connection",
         key="prod"),
    case("prod-patch-connection", "PATCH", f"/connections/{CONN}{Q}", body({"tags": {"a": "b"}}), 400,
         "unknown_provider_config", key="prod"),
    case("prod-set-metadata", "POST", "/connections/metadata", meta(), 404, "unknown_connection", key="prod"),
    case("prod-update-metadata", "PATCH", "/connections/metadata", meta(), 404, "unknown_connection", key="prod"),
    case("prod-legacy-metadata", "POST", f"/connection/{CONN}/metadata",
         {"json": {"a": 1}, "headers": {"Provider-Config-Key": GH}}, 404, "unknown_connection", key="prod"),
    case("prod-import", "POST", "/connections", conn(), 404, "not_found", key="prod"),
    # No usable key.
    case("no-key", "POST", "/integrations", body(integration_body()), 401, "missing_auth_header", key=None),
    case("unknown-key", "DELETE", f"/integrations/{GH}", None, 401, "unknown_account", key=str(uuid.uuid4())),
]


@pytest.fixture(scope="module")
def seeded(system):
    """Records the bad requests aim at: a dev GitHub integration with one connection, a dev
    Stripe integration, and a prod GitHub integration."""
    dev, prod = gateway(system, "dev"), gateway(system, "prod")
    make_integration(dev, unique_key=GH)
    make_integration(dev, unique_key=STRIPE, provider="stripe", credentials=OMIT)
    make_connection(dev, GH, connection_id=CONN, metadata={"seed": True}, tags={"team": "blue"})
    make_integration(prod, unique_key=PROD_GH)
    return system


def snapshot(database_url: str) -> dict[str, list[tuple]]:
    return {table: raw_rows(database_url, f"SELECT * FROM {table} ORDER BY id") for table in TABLES}


@pytest.mark.parametrize(("method", "path", "send", "status", "code", "error_path", "key"), CASES)
def test_refused_with_its_error_and_nothing_changes(seeded, method, path, send, status, code, error_path, key):
    before = snapshot(seeded.database_url)

    response = gateway(seeded, key).request(method, path, **send)

    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    if error_path is not None:
        assert error_path in [issue["path"] for issue in error["errors"]], error
    assert snapshot(seeded.database_url) == before


def test_prod_lists_none_of_devs_records(seeded):
    prod = gateway(seeded, "prod")
    assert [i["unique_key"] for i in prod.get("/integrations").json()["data"]] == [PROD_GH]
    assert prod.get("/connections").json() == {"connections": []}
    assert prod.get("/connections", params={"integrationId": GH}).json() == {"connections": []}


@pytest.mark.parametrize("size", [600 * 1024, 2 * MIB])
def test_unread_or_oversized_bodies_do_not_break_the_next_requests(seeded, size):
    # A service that answers without reading a large body closes its connection; the request
    # the gateway sends next must not land on that dead connection.
    api = gateway(seeded)
    for _ in range(8):
        refused = api.delete(f"/connections/{CONN}", data=b"x" * size, headers={"Content-Type": "application/json"})
        following = api.post("/integrations", json={"unique_key": "k", "provider": "nope"})
        assert refused.status_code in (400, 413), refused.text
        assert following.status_code == 400, following.text


def test_a_body_the_store_does_not_need_is_still_read(seeded):
    # Sent straight to the store, as the gateway does: had it left the body unread, the server
    # would close the connection after answering, and the next request on it would fail.
    db = seeded.database_url
    env_id, account_id = raw_rows(db, "SELECT id, account_id FROM environments WHERE name = 'dev'")[0]
    key_id = raw_rows(db, f"SELECT id FROM api_keys WHERE environment_id = {env_id} AND kind = 'secret' "
                          "AND revoked_at IS NULL")[0][0]
    identity = Identity(account_id=account_id, environment_id=env_id, environment="dev", plan="growth",
                        rate_limit=2000, key_kind="secret", key_id=key_id)
    headers = {"X-Authport-Internal-Key": seeded.env["INTERNAL_API_KEY"], "Content-Type": "application/json",
               **identity.to_headers()}
    target = urlparse(seeded.service_url("store"))
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("DELETE", f"/connections/{CONN}", body=b"x" * (600 * 1024), headers=headers)
            answer = conn.getresponse()
            assert answer.status == 400 and b"invalid_query_params" in answer.read()
            time.sleep(0.2)
    finally:
        conn.close()
