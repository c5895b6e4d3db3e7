"""Nango's real Node SDK (@nangohq/node@0.71.10) against Authport's gateway, on both backends.

Each test runs one Node process (tests/e2e/sdk_driver.mjs) over a list of SDK calls and asserts on
what the SDK handed back, compared with what Nango's own server gave the same SDK
(/work/shared/NANGO_TRANSCRIPT.md, S1-S21).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.npm import npm_install

SDK_SPEC = "@nangohq/node@0.71.10"
DRIVER = Path(__file__).with_name("sdk_driver.mjs")
Z_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FULL_KEYS = {"id", "connection_id", "provider_config_key", "provider", "errors", "end_user", "tags", "metadata",
             "connection_config", "webhook_url_override", "created_at", "updated_at", "last_fetched_at",
             "credentials"}
ITEM_KEYS = {"id", "connection_id", "provider_config_key", "provider", "errors", "end_user", "tags", "metadata",
             "created"}
INTEGRATION_KEYS = {"unique_key", "provider", "display_name", "logo", "forward_webhooks", "created_at", "updated_at"}


@pytest.fixture(scope="session")
def sdk_dir() -> Path:
    return npm_install(SDK_SPEC)


def driver(system, sdk_dir: Path, **keys: str):
    """A runner of SDK steps against `system` (keys: dev, prod, unknown, malformed, and `keys`)."""
    node = shutil.which("node")
    assert node, "node is not on PATH"

    def run(*steps: dict) -> list[dict]:
        plan = {"host": system.url, "steps": list(steps),
                "keys": {"dev": system.dev_key, "prod": system.prod_key, "unknown": str(uuid.uuid4()),
                         "malformed": "not-a-uuid", **keys}}
        proc = subprocess.run([node, str(DRIVER), str(sdk_dir)], input=json.dumps(plan), capture_output=True,
                              text=True, timeout=60, check=False)
        lines = proc.stdout.splitlines()
        assert proc.returncode == 0 and len(lines) == len(steps), (
            f"driver exit {proc.returncode}:\n{proc.stderr}\n{proc.stdout}\n{system.logs()}")
        return [json.loads(line) for line in lines]

    return run


@pytest.fixture
def sdk(system, sdk_dir):
    """Run SDK steps against `system`; returns one result dict per step."""
    return driver(system, sdk_dir)


def call(method: str, *args, as_: str = "dev") -> dict:
    return {"call": method, "args": list(args), "as": as_}


def returned(result: dict):
    assert "threw" not in result, result
    if result["returned"] == "AxiosResponse":
        return result["status"], result["data"]
    return result["returned"]


def threw(result: dict) -> tuple[int, dict]:
    assert "threw" in result, result
    assert result["threw"] == "AxiosError", result
    return result["status"], result["data"]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def github(key: str) -> dict:
    return call("createIntegration", {"unique_key": key, "provider": "github", "display_name": "GitHub SDK",
                                      "credentials": {"type": "OAUTH2", "client_id": "sdk-client-id",
                                                      "client_secret": "sdk-client-secret", "scopes": "repo"}})


def import_connection(key: str, connection_id: str | None, credentials: dict, **extra) -> dict:
    body = {"provider_config_key": key, "credentials": credentials, **extra}
    if connection_id is not None:
        body["connection_id"] = connection_id
    return call("http.post", "/connections", body)


def oauth2(access: str = "gho_sdk_access", refresh: str | None = "ghr_sdk_refresh") -> dict:
    creds = {"type": "OAUTH2", "access_token": access, "expires_at": "2099-01-01T00:00:00.000Z"}
    if refresh:
        creds["refresh_token"] = refresh
    return creds


def test_integration_lifecycle(sdk, system):
    key = unique("github-sdk")
    results = sdk(
        github(key),
        call("listIntegrations"),
        call("getIntegration", {"uniqueKey": key}, {"include": ["credentials"]}),
        call("getIntegration", {"uniqueKey": key}),
        call("updateIntegration", {"uniqueKey": key}, {"display_name": "Renamed"}),
        call("updateIntegration", {"uniqueKey": key}, {"credentials": {
            "type": "OAUTH2", "client_id": "new-id", "client_secret": "new-secret", "scopes": "repo,user"}}),
        call("getIntegration", {"uniqueKey": key}, {"include": ["credentials"]}),
        github(key),
        call("createIntegration", {"unique_key": unique("nope"), "provider": "not-a-provider"}),
        call("deleteIntegration", key),
        call("getIntegration", {"uniqueKey": key}),
        call("deleteIntegration", key),
    )
    created = returned(results[0])["data"]
    assert set(created) == INTEGRATION_KEYS
    assert created["unique_key"] == key and created["provider"] == "github"
    assert created["display_name"] == "GitHub SDK" and created["forward_webhooks"] is True
    assert created["logo"] == f"{system.url}/images/template-logos/github.svg"
    assert Z_TIME.match(created["created_at"]) and created["created_at"] == created["updated_at"]

    listed = returned(results[1])
    assert set(listed) == {"configs"}, "the SDK rewraps {data} as {configs}"
    assert created in listed["configs"]

    with_creds = returned(results[2])["data"]
    assert with_creds["credentials"] == {"type": "OAUTH2", "client_id": "sdk-client-id",
                                         "client_secret": "sdk-client-secret", "scopes": "repo",
                                         "webhook_secret": None}
    assert returned(results[3]) == {"data": created}, "no credentials unless asked for"

    renamed = returned(results[4])["data"]
    assert renamed["display_name"] == "Renamed" and renamed["created_at"] == created["created_at"]
    assert instant(renamed["updated_at"]) >= instant(created["updated_at"])
    assert returned(results[5])["data"]["display_name"] == "Renamed"
    assert returned(results[6])["data"]["credentials"] == {
        "type": "OAUTH2", "client_id": "new-id", "client_secret": "new-secret", "scopes": "repo,user",
        "webhook_secret": None}

    status, body = threw(results[7])
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert body["error"]["errors"][0]["path"] == ["uniqueKey"]
    status, body = threw(results[8])
    assert status == 400 and body["error"]["errors"][0]["path"] == ["provider"]

    assert returned(results[9]) == (200, {"success": True})
    assert threw(results[10])[0] == 404 and threw(results[10])[1]["error"]["code"] == "not_found"
    assert threw(results[11])[0] == 404


def test_oauth2_connection_through_its_life(sdk):
    key, conn = unique("github-sdk"), unique("sdk-conn")
    results = sdk(
        github(key),
        import_connection(key, conn, oauth2()),
        call("getConnection", key, conn),
        call("getConnection", key, conn, False, True),
        call("getToken", key, conn),
        call("getRawTokenResponse", key, conn),
        call("setMetadata", key, conn, {"a": 1, "nested": {"b": True}}),
        call("updateMetadata", key, conn, {"c": "x"}),
        call("getMetadata", key, conn),
        call("deleteConnection", key, conn),
        call("getConnection", key, conn),
        call("deleteConnection", key, conn),
    )
    status, imported = returned(results[1])
    assert status == 201
    assert set(imported) == FULL_KEYS
    assert imported["connection_id"] == conn and imported["provider_config_key"] == key
    assert imported["provider"] == "github" and isinstance(imported["id"], int)
    assert (imported["errors"], imported["end_user"], imported["tags"], imported["metadata"]) == ([], None, {}, {})
    assert imported["connection_config"] == {} and imported["webhook_url_override"] is None
    for field in ("created_at", "updated_at", "last_fetched_at"):
        assert Z_TIME.match(imported[field]), imported[field]
    full_creds = {**oauth2(), "raw": oauth2()}
    assert imported["credentials"] == full_creds

    plain = returned(results[2])
    assert set(plain) == FULL_KEYS and plain["id"] == imported["id"]
    for field in ("created_at", "updated_at", "last_fetched_at"):
        assert Z_TIME.match(plain[field]), plain[field]  # as the import answered them
    assert instant(plain["created_at"]) == instant(imported["created_at"])
    assert instant(plain["last_fetched_at"]) >= instant(imported["last_fetched_at"])
    assert plain["credentials"] == {**oauth2(refresh=None), "raw": oauth2(refresh=None)}, "refresh_token stripped"
    assert returned(results[3])["credentials"] == full_creds, "refreshToken=true keeps it"
    assert returned(results[4]) == "gho_sdk_access"
    assert returned(results[5]) == oauth2(refresh=None)

    assert returned(results[6]) == (201, {"metadata": {"a": 1, "nested": {"b": True}}, "connection_id": conn,
                                          "provider_config_key": key})
    assert returned(results[7]) == (200, {"metadata": {"c": "x"}, "connection_id": conn, "provider_config_key": key})
    assert returned(results[8]) == {"a": 1, "nested": {"b": True}, "c": "x"}

    assert returned(results[9]) == (200, {"success": True})
    assert threw(results[10]) == (404, {"error": {"code": "not_found", "message": "Failed to find connection"}})
    assert threw(results[11]) == (400, {"error": {"code": "unknown_connection"}})


def test_api_key_and_basic_connections(sdk):
    openai, twilio = unique("openai"), unique("twilio")
    api_key = {"type": "API_KEY", "apiKey": "sk-test-123"}
    basic = {"type": "BASIC", "username": "AC" + "0" * 32, "password": "auth-token"}
    results = sdk(
        call("createIntegration", {"unique_key": openai, "provider": "openai"}),
        call("createIntegration", {"unique_key": twilio, "provider": "twilio"}),
        import_connection(openai, "ai-conn", api_key),
        import_connection(twilio, "sms-conn", basic),
        call("getToken", openai, "ai-conn"),
        call("getToken", twilio, "sms-conn"),
        call("getConnection", twilio, "sms-conn"),
        import_connection(openai, "wrong-mode", basic),
    )
    assert returned(results[0])["data"]["display_name"] == "OpenAI"
    assert returned(results[1])["data"]["provider"] == "twilio"
    status, imported = returned(results[2])
    assert status == 201 and imported["credentials"] == api_key and imported["provider"] == "openai"
    status, imported = returned(results[3])
    assert status == 201 and imported["credentials"] == basic
    assert returned(results[4]) == api_key, "getToken gives the whole credentials object for API_KEY"
    assert returned(results[5]) == basic
    fetched = returned(results[6])
    assert set(fetched) == FULL_KEYS and fetched["credentials"] == basic
    status, body = threw(results[7])
    assert status == 400 and body["error"]["code"] == "invalid_body"


def test_list_connections_filters(sdk):
    key = unique("github-sdk")
    user = {"id": unique("user"), "email": "user2@example.com", "display_name": "User Two"}
    results = sdk(
        github(key),
        import_connection(key, "first", oauth2("a1")),
        import_connection(key, None, oauth2("a2"), end_user=user, tags={"team": "blue"}),
        import_connection(key, "third", oauth2("a3")),
        call("listConnections"),
        call("listConnections", {"integrationId": key}),
        call("listConnections", {"integrationId": key, "limit": 1}),
        call("listConnections", {"userId": user["id"]}),
        call("listConnections", "", "", {"endUserId": user["id"]}),  # legacy signature
        call("listConnections", {"integrationId": key, "tags": {"Team": "blue"}}),
        call("listConnections", {"integrationId": key, "tags": {"email": "user2@example.com"}}),
        call("listConnections", {"integrationId": key, "tags": {"team": "red"}}),
        call("listConnections", "third"),
    )
    generated = returned(results[2])[1]
    assert uuid.UUID(generated["connection_id"]).version == 4
    assert generated["end_user"] == {**user, "tags": None, "organization": None}
    assert generated["tags"] == {"team": "blue", "end_user_id": user["id"], "end_user_email": user["email"],
                                 "end_user_display_name": "User Two"}
    newest_first = ["third", generated["connection_id"], "first"]

    everything = returned(results[4])["connections"]
    ours = [c for c in everything if c["provider_config_key"] == key]
    assert [c["connection_id"] for c in ours] == newest_first
    for item in everything:
        assert set(item) == ITEM_KEYS and Z_TIME.match(item["created"]), item
    assert ours[1]["end_user"] == generated["end_user"] and ours[1]["tags"] == generated["tags"]
    assert instant(ours[1]["created"]) == instant(generated["created_at"])

    def ids(result: dict) -> list[str]:
        body = returned(result)
        assert set(body) == {"connections"}
        return [c["connection_id"] for c in body["connections"]]

    assert ids(results[5]) == newest_first
    assert ids(results[6]) == ["third"]
    assert ids(results[7]) == [generated["connection_id"]]
    assert ids(results[8]) == [generated["connection_id"]]
    assert ids(results[9]) == [generated["connection_id"]], "tag keys are lowercased by the SDK"
    assert ids(results[10]) == [generated["connection_id"]], "tags.email means end_user_email"
    assert ids(results[11]) == []
    assert ids(results[12]) == ["third"]


def test_providers(sdk, system):
    results = sdk(
        call("listProviders"),
        call("listProviders", {"search": "TWIL"}),
        call("getProvider", {"provider": "github"}),
        call("getProvider", {"provider": "no-such-provider"}),
    )
    everything = returned(results[0])["data"]
    names = {p["name"] for p in everything}
    assert {"github", "openai", "twilio"} <= names
    for provider in everything:
        assert provider["logo_url"] == f"{system.url}/images/template-logos/{provider['name']}.svg"
        assert "auth_mode" in provider
    searched = returned(results[1])["data"]
    assert [p["name"] for p in searched] == ["twilio"], "search is case-insensitive on the name"
    assert searched[0]["auth_mode"] == "BASIC"
    github_entry = returned(results[2])["data"]
    assert github_entry["name"] == "github" and github_entry["auth_mode"] == "OAUTH2"
    assert github_entry["display_name"] == "GitHub" and github_entry in everything
    assert threw(results[3]) == (404, {"error": {"code": "not_found", "message": "Unknown provider no-such-provider"}})


def test_environment_variables_are_an_empty_list(sdk):
    assert returned(sdk(call("getEnvironmentVariables"))[0]) == []


def test_keys_and_environment_isolation(sdk):
    key, conn = unique("github-dev"), unique("dev-conn")
    results = sdk(
        github(key),
        import_connection(key, conn, oauth2()),
        call("listConnections", as_="unknown"),
        call("listIntegrations", as_="malformed"),
        call("listIntegrations", as_="prod"),
        call("getIntegration", {"uniqueKey": key}, as_="prod"),
        call("listConnections", as_="prod"),
        call("getConnection", key, conn, as_="prod"),
        call("deleteIntegration", key, as_="prod"),
        call("getToken", key, conn),
    )
    assert threw(results[2]) == (401, {"error": {
        "message": "Authentication failed. The provided authorization header does not match any account.",
        "code": "unknown_account", "payload": {}}})
    status, body = threw(results[3])
    assert status == 401 and body["error"]["code"] == "invalid_secret_key_format"
    assert key not in [c["unique_key"] for c in returned(results[4])["configs"]]
    assert threw(results[5])[0] == 404
    assert conn not in [c["connection_id"] for c in returned(results[6])["connections"]]
    status, body = threw(results[7])
    assert status == 400 and body["error"]["code"] == "unknown_provider_config"
    assert threw(results[8])[0] == 404
    assert returned(results[9]) == "gho_sdk_access", "prod's failed delete left dev's connection alone"


LEGACY_SPEC = "@nangohq/node@0.42.22"


def test_legacy_config_routes_through_the_0_42_sdk(system):
    """0.42's integration methods call /config; they answer as /integrations does, on the same records."""
    run = driver(system, npm_install(LEGACY_SPEC))
    key = unique("legacy")
    results = run(
        call("createIntegration", "github", key, {"oauth_client_id": "cid", "oauth_client_secret": "csecret",
                                                   "oauth_scopes": "repo,user"}),
        call("getIntegration", key, True),
        call("getIntegration", key),
        call("updateIntegration", "github", key, {"oauth_client_id": "cid2", "oauth_client_secret": "s2"}),
        call("http.get", f"/integrations/{key}?include=credentials"),
        call("listIntegrations"),
        call("createIntegration", "github", key),
        call("http.post", "/integrations", {"unique_key": key, "provider": "github"}),
        call("createIntegration", "not-a-provider", unique("nope")),
        call("http.post", "/integrations", {"unique_key": unique("nope"), "provider": "not-a-provider"}),
        call("createIntegration", "github", unique("bad"), {"client_id": "wrong field"}),
        call("deleteIntegration", key),
        call("getIntegration", key),
        call("http.get", f"/integrations/{key}"),
        call("http.get", "/config"),
    )
    assert returned(results[0]) == {"config": {"unique_key": key, "provider": "github"}}
    config = returned(results[1])["config"]
    assert (config["unique_key"], config["client_id"], config["client_secret"], config["scopes"]) == (
        key, "cid", "csecret", "repo,user")
    assert Z_TIME.match(config["created_at"])
    assert returned(results[2]) == {"config": {"unique_key": key, "provider": "github", "syncs": [], "actions": []}}
    assert returned(results[3]) == {"config": {"unique_key": key, "provider": "github"}}
    status, body = returned(results[4])
    assert status == 200 and body["data"]["credentials"]["client_id"] == "cid2"  # the same record
    assert key in [c["unique_key"] for c in returned(results[5])["configs"]]
    assert threw(results[6]) == threw(results[7])  # the same error as /integrations
    assert threw(results[8]) == threw(results[9])
    status, body = threw(results[10])
    assert status == 400 and body["error"]["code"] == "invalid_body"
    assert returned(results[11]) == (204, "")
    assert threw(results[12]) == threw(results[13])
    assert threw(results[12])[0] == 404
    status, body = returned(results[14])
    assert status == 200 and key not in [c["unique_key"] for c in body["configs"]]


# Every method of 0.71.10's Nango class: the test that drives it, the unsupported Nango area it hits
# (an explicit 501 `not_supported_by_authport`, asserted below), or the client-side helper it is.
K, C = "unsupported-key", "unsupported-conn"
UNSUPPORTED_CALLS = {  # method: (args, area named in the 501 message)
    "getProviderTemplates": ([{"provider": "github"}], "Templates"),
    "createQuickstartIntegration": ([{"provider": "github"}], "Quickstart integrations"),
    "listFunctions": ([{"uniqueKey": K}], "Functions"),
    "getFunction": ([{"uniqueKey": K, "name": "f"}], "Functions"),
    "getFunctionCode": ([{"uniqueKey": K, "name": "f"}], "Functions"),
    "deleteFunction": ([{"uniqueKey": K, "name": "f"}], "Functions"),
    "getScriptsConfig": ([], "Scripts"),
    "listRecords": ([{"providerConfigKey": K, "connectionId": C, "model": "M"}], "Records"),
    "pruneRecords": ([{"providerConfigKey": K, "connectionId": C, "model": "M", "untilCursor": "x"}], "Records"),
    "triggerSync": ([K, ["s"], C], "Syncs"),
    "startSync": ([K, ["s"], C], "Syncs"),
    "pauseSync": ([K, ["s"], C], "Syncs"),
    "syncStatus": ([K, ["s"], C], "Syncs"),
    "updateSyncConnectionFrequency": ([K, "s", C, "every hour"], "Syncs"),
    "createSyncVariant": ([{"providerConfigKey": K, "connectionId": C, "name": "s", "variant": "v"}], "Syncs"),
    "deleteSyncVariant": ([{"providerConfigKey": K, "connectionId": C, "name": "s", "variant": "v"}], "Syncs"),
    "triggerAction": ([K, C, "a", {}], "Actions"),
    "triggerActionAsync": ([K, C, "a", {}], "Actions"),
    "getAsyncActionResult": ([{"id": "x"}], "Actions"),
}
TESTED = {
    "listProviders": "test_providers", "getProvider": "test_providers",
    "listIntegrations": "test_integration_lifecycle", "getIntegration": "test_integration_lifecycle",
    "createIntegration": "test_integration_lifecycle", "updateIntegration": "test_integration_lifecycle",
    "deleteIntegration": "test_integration_lifecycle", "listConnections": "test_list_connections_filters",
    "getConnection": "test_oauth2_connection_through_its_life", "getToken": "test_oauth2_connection_through_its_life",
    "getRawTokenResponse": "test_oauth2_connection_through_its_life",
    "getMetadata": "test_oauth2_connection_through_its_life", "setMetadata": "test_oauth2_connection_through_its_life",
    "updateMetadata": "test_oauth2_connection_through_its_life",
    "deleteConnection": "test_oauth2_connection_through_its_life",
    "getEnvironmentVariables": "test_environment_variables_are_an_empty_list",
    "patchConnection": "test_every_served_method_with_the_secret_key_and_a_scoped_key",
    "createConnectSession": "test_every_served_method_with_the_secret_key_and_a_scoped_key",
    "createReconnectSession": "test_every_served_method_with_the_secret_key_and_a_scoped_key",
    "waitForConnection": "test_every_served_method_with_the_secret_key_and_a_scoped_key",
    **{verb: "tests/proxy/test_node_sdk_proxy.py" for verb in ("proxy", "get", "post", "put", "patch", "delete")},
    "verifyWebhookSignature": "tests/auth/test_webhooks.py (verify_webhook.mjs)",
    "verifyIncomingWebhookRequest": "tests/auth/test_webhook_signing_key.py (verify_webhook.mjs)",
}
HELPERS = {"getConnectionDetails", "enrichHeaders", "_triggerAction", "_verifyWebhookSignatureImpl"}  # no own route


def test_every_method_of_the_nango_class_is_accounted_for(sdk_dir):
    listed = subprocess.run(
        ["node", "-e", "const {Nango} = require('@nangohq/node'); console.log(JSON.stringify("
         "Object.getOwnPropertyNames(Nango.prototype).filter((n) => n !== 'constructor')))"],
        cwd=sdk_dir, capture_output=True, text=True, timeout=60, check=True)
    methods = set(json.loads(listed.stdout))
    accounted = set(UNSUPPORTED_CALLS) | set(TESTED) | HELPERS
    assert methods == accounted, (sorted(methods - accounted), sorted(accounted - methods))


@pytest.fixture
def scoped_key(system) -> str:
    """A key of the dev environment made by the prod key through POST /environment/api-keys."""
    from tests.support.databases import raw_rows

    dev_id = raw_rows(system.database_url, "SELECT e.id FROM environments e JOIN accounts a ON e.account_id = a.id "
                                           "WHERE a.name = 'default' AND e.name = 'dev'")[0][0]
    made = system.session(system.prod_key).post(system.url + "/environment/api-keys",
                                                json={"environment_id": dev_id, "display_name": unique("sdk")})
    assert made.status_code == 200, made.text
    return made.json()["data"]["secret"]


@pytest.mark.parametrize("as_", ["dev", "scoped"])
def test_every_served_method_with_the_secret_key_and_a_scoped_key(system, sdk_dir, scoped_key, as_):
    run = driver(system, sdk_dir, scoped=scoped_key)
    key, conn, user = unique("github-any"), unique("conn"), {"id": unique("user"), "email": "u@example.com"}
    steps = [
        github(key), import_connection(key, conn, oauth2(), end_user=user),
        call("listIntegrations"), call("getIntegration", {"uniqueKey": key}), call("listProviders"),
        call("getProvider", {"provider": "github"}), call("listConnections", {"integrationId": key}),
        call("getConnection", key, conn), call("getToken", key, conn), call("getRawTokenResponse", key, conn),
        call("setMetadata", key, conn, {"a": 1}), call("updateMetadata", key, conn, {"b": 2}),
        call("getMetadata", key, conn), call("patchConnection", {"connectionId": conn, "provider_config_key": key},
                                             {"tags": {"team": "blue"}}),
        call("waitForConnection", key, user["id"]),
        call("createConnectSession", {"end_user": {"id": user["id"]}, "allowed_integrations": [key]}),
        call("createReconnectSession", {"connection_id": conn, "integration_id": key}),
        call("getEnvironmentVariables"),
        call("updateIntegration", {"uniqueKey": key}, {"display_name": "Renamed"}),
        call("deleteConnection", key, conn), call("deleteIntegration", key),
    ]
    results = run(*[{**step, "as": as_} for step in steps])
    failed = [(step["call"], result) for step, result in zip(steps, results, strict=True) if "threw" in result]
    assert not failed, failed
    assert returned(results[9])["access_token"] == "gho_sdk_access"
    assert returned(results[8]) == "gho_sdk_access"
    # POST and GET answers give the same instants, to the millisecond, in the same format ("Z").
    created, got = returned(results[0])["data"], returned(results[3])["data"]
    assert Z_TIME.match(created["created_at"]) and created["created_at"] == got["created_at"]
    imported, read = returned(results[1])[1], returned(results[7])
    assert Z_TIME.match(imported["created_at"]) and imported["created_at"] == read["created_at"]
    assert returned(results[12]) == {"a": 1, "b": 2}
    assert returned(results[13]) == {"success": True}
    assert returned(results[14])["connection_id"] == conn and returned(results[14])["tags"]["team"] == "blue"
    for session in (returned(results[15]), returned(results[16])):
        assert session["data"]["token"].startswith("nango_connect_session_")


@pytest.mark.parametrize("as_", ["dev", "scoped"])
def test_unsupported_areas_answer_501_through_the_sdk(system, sdk_dir, scoped_key, as_):
    run = driver(system, sdk_dir, scoped=scoped_key)
    results = run(*[{**call(method, *args), "as": as_} for method, (args, _area) in UNSUPPORTED_CALLS.items()])
    for (method, (_args, area)), result in zip(UNSUPPORTED_CALLS.items(), results, strict=True):
        status, body = threw(result)
        assert status == 501 and body["error"]["code"] == "not_supported_by_authport", (method, result)
        assert area in body["error"]["message"], (method, body)
