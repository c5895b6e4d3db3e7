"""schemathesis drives every operation of the served document against the five real processes:
no 5xx, every answer in the documented status codes, content types and schemas.

Each operation gets a few cases aimed at seeded data (a real integration of a loopback provider,
a connection, a connect session, a named key), so it is exercised beyond 4xx, and a few generated
freely. Destructive operations run last and the seed is restored after each."""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.system import catalogue_system
from tests.support.upstream import Upstream

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEDED, GENERATED = 1, 1  # cases per operation (each operation runs in a fresh @given)
KEY, CONN, NAMED_KEY = "loop", "conn-1", "ops"
# The operator's pages are HTML behind Basic auth and CSRF; the browser tests drive them.
SKIPPED_TAGS = {"Dashboard"}
LAST = ("revokeApiKey", "deleteConnection", "restoreConnection", "deleteConnectionLegacy", "purgeConnection",
        "purgeEndUser", "deleteConnectSession", "legacyDeleteConfig", "deleteIntegration")
KEEP_DELETED = {"deleteConnection"}  # the seed is restored after it only once restoreConnection has run
IMPORT = {"provider_config_key": KEY, "connection_id": CONN, "credentials": {"type": "API_KEY", "apiKey": "k-2"}}
METADATA = {"connection_id": CONN, "provider_config_key": KEY, "metadata": {"b": 2}}
SEEDED_BODIES = {
    "createIntegration": {"provider": "loopapi", "unique_key": "made-by-schemathesis"},
    "importConnection": IMPORT, "importConnectionLegacy": IMPORT,
    "setMetadata": METADATA, "updateMetadata": METADATA,
    "setMetadataLegacy": METADATA, "updateMetadataLegacy": METADATA,
    "createConnectSession": {"end_user": {"id": "user-2"}},
    "createReconnectSession": {"connection_id": CONN, "integration_id": KEY},
    "legacyCreateConfig": {"provider": "loopapi", "provider_config_key": "config-made"},
    "legacyUpdateConfig": {"provider": "loopapi", "provider_config_key": KEY},
    "setWebhook": {"url": None}, "unauthenticatedConnection": {},
    "apiKeyCapture": {"apiKey": "k-3"}, "basicCapture": {"username": "u", "password": "p"},
}
SEEDED_QUERIES = {"exportLogs": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}}
# Operations no seeded case can take past 4xx here, and why.
NEVER_BELOW_400 = {
    "GET /oauth/callback": "needs the state of a flow a browser started (tests/auth/test_oauth_flow.py)",
    "GET /metrics": "answers only a caller with the internal secret (tests/test_metrics.py)",
    "POST /auth/tba/{providerConfigKey}": "needs a NetSuite-like account to verify against (test_tba_capture.py)",
    "POST /oauth2/auth/{providerConfigKey}": "needs a token endpoint granting client credentials (tests/auth)",
    **{f"{op} {path}": "needs the prod environment's secret key (test_key_lifecycle.py)" for op, path in (
        ("POST", "/environments"), ("DELETE", "/environments/{id}"), ("POST", "/environment/api-keys"),
        ("DELETE", "/environment/api-keys"))},
    "POST /webhook/{environmentUuid}/{providerConfigKey}": "needs the environment's uuid, which no public route "
    "shows (test_inbound_webhooks.py)",
    **{f"POST /auth/{mode}/{{providerConfigKey}}": "needs the provider's own token service (test_token_modes.py, "
       "test_aws_sigv4.py)" for mode in ("jwt", "app-store", "two-step", "signature", "bill", "aws-sigv4")},
}


@pytest.fixture(scope="module")
def provider_api():
    upstream = Upstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory, provider_api):
    catalogue = {
        "loopapi": {"display_name": "Loop API", "auth_mode": "API_KEY",
                    "proxy": {"base_url": provider_api.url, "headers": {"authorization": "Bearer ${apiKey}"}}},
        "loopnone": {"display_name": "Loop None", "auth_mode": "NONE", "proxy": {"base_url": provider_api.url}},
        "loopbasic": {"display_name": "Loop Basic", "auth_mode": "BASIC", "proxy": {"base_url": provider_api.url}},
        "loopoauth": {"display_name": "Loop OAuth", "auth_mode": "OAUTH2",
                      "authorization_url": provider_api.url + "/authorize", "token_url": provider_api.url + "/token",
                      "proxy": {"base_url": provider_api.url}},
    }
    with catalogue_system(tmp_path_factory.mktemp("openapi"), "sqlite", catalogue) as running:
        yield running


class Seed:
    """The records the seeded cases point at, put back after each destructive operation."""

    def __init__(self, system):
        self.system = system
        self.http = system.session()
        self.token = ""

    def restore(self) -> None:
        http, url = self.http, self.system.url
        if http.get(f"{url}/integrations/{KEY}").status_code == 404:
            assert http.post(f"{url}/integrations", json={"provider": "loopapi", "unique_key": KEY}).ok
        if http.get(f"{url}/integrations/noneloop").status_code == 404:
            assert http.post(f"{url}/integrations", json={"provider": "loopnone", "unique_key": "noneloop"}).ok
        if http.get(f"{url}/integrations/basicloop").status_code == 404:
            assert http.post(f"{url}/integrations", json={"provider": "loopbasic", "unique_key": "basicloop"}).ok
        if http.get(f"{url}/integrations/oauthloop").status_code == 404:
            assert http.post(f"{url}/integrations", json={"provider": "loopoauth", "unique_key": "oauthloop",
                                                          "credentials": {"type": "OAUTH2", "client_id": "cid",
                                                                          "client_secret": "csecret"}}).ok
        assert http.post(f"{url}/connections", json={
            "provider_config_key": KEY, "connection_id": CONN, "credentials": {"type": "API_KEY", "apiKey": "k-1"},
            "end_user": {"id": "user-1"}, "metadata": {"a": 1}}).status_code == 201
        if not any(k["name"] == NAMED_KEY and not k["revoked_at"]
                   for k in http.get(f"{url}/environment/keys").json()["data"]):
            assert http.post(f"{url}/environment/keys", json={"name": NAMED_KEY}).status_code == 201
        answer = http.post(f"{url}/connect/sessions", json={"end_user": {"id": "user-1"}})
        assert answer.status_code == 201, answer.text
        self.token = answer.json()["data"]["token"]
        page = requests.get(f"{url}/connect")
        self.asset = re.search(r"/connect/assets/([^\"'?]+)", page.text).group(1)

    def auth(self, operation) -> tuple[dict, dict]:
        """(headers, query) carrying the credential the operation's first security scheme asks for."""
        security = operation.definition.raw.get("security", [{"secretKey": []}])
        scheme = next(iter(security[0]), None) if security else None
        if scheme == "connectSessionToken":
            return {"Authorization": f"Bearer {self.token}"}, {}
        if scheme in ("connectSessionTokenQuery", "publicKeyQuery"):
            return {}, {"connect_session_token": self.token}
        if scheme == "secretKey":
            return {"Authorization": f"Bearer {self.system.dev_key}"}, {}
        return {}, {}


def seeded_values(operation, seed: Seed) -> dict:
    """Path, query and header values naming the seeded records, for the parameters the operation has."""
    names = {(str(getattr(p.location, "value", p.location)), p.name) for p in operation.iter_parameters()}
    known = {("path", "uniqueKey"): KEY, ("path", "connectionId"): CONN, ("query", "provider_config_key"): KEY,
             ("path", "providerConfigKey"): "oauthloop" if operation.path.startswith("/oauth/")
             else "basicloop" if operation.path.startswith("/api-auth/basic/")
             else "noneloop" if operation.path.startswith("/auth/unauthenticated/") else KEY,
             ("path", "name"): NAMED_KEY, ("path", "provider"): "loopapi", ("header", "Provider-Config-Key"): KEY,
             ("header", "Connection-Id"): CONN, ("path", "endpoint"): "items", ("path", "id"): 1}
    values: dict = {"path_parameters": {}, "query": dict(SEEDED_QUERIES.get(operation_id(operation), {})),
                    "headers": {}}
    for (where, name), value in known.items():
        if (where, name) in names:
            values[{"path": "path_parameters", "query": "query", "header": "headers"}[where]][name] = value
    if operation.path == "/connect/assets/{name}":
        values["path_parameters"]["name"] = seed.asset
    values = {k: v for k, v in values.items() if v}
    if operation_id(operation) in SEEDED_BODIES:
        values["body"] = SEEDED_BODIES[operation_id(operation)]
    return values


def operation_id(operation) -> str:
    return operation.definition.raw["operationId"]


bodies: dict[str, str] = {}  # the last answer of each operation, shown when one never got past 4xx


def bound(check, fixed: bool):
    """`check` with its second argument fixed, as a plain one-argument function (what @given wraps)."""
    def run(case) -> None:
        check(case, fixed)
    return run


def run_operation(operation, seed: Seed, base_url: str, failures: list, statuses: dict) -> None:
    headers, auth_query = seed.auth(operation)

    seeded = seeded_values(operation, seed)

    def check(case, fixed: bool) -> None:
        if fixed:  # a seeded case sends only the seeded values, no generated optional ones beside them
            case.query = dict(seeded.get("query", {}))
            case.headers = dict(seeded.get("headers", {}))
        case.query = {**(case.query or {}), **auth_query}
        try:
            response = case.call(base_url=base_url, headers=headers, allow_redirects=False, timeout=20)
        except requests.RequestException as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}")
            return
        statuses.setdefault(operation.label, set()).add(response.status_code)
        bodies[operation.label] = f"{case.path_parameters} {case.query} {response.text[:300]}"
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as exc:  # noqa: BLE001 - every failing case is reported (FailureGroup), not the first
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label} {response.status_code}: {str(exc)[:600]}")

    for strategy, count, fixed in ((operation.as_strategy(**seeded), SEEDED, True),
                                   (operation.as_strategy(), GENERATED, False)):
        budget = settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
                          suppress_health_check=list(HealthCheck))
        given(case=strategy)(budget(bound(check, fixed)))()


def test_every_operation_answers_as_documented(system):
    schema = schemathesis.openapi.from_url(system.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if not SKIPPED_TAGS & set(op.definition.raw.get("tags", []))]
    operations.sort(key=lambda op: LAST.index(operation_id(op)) + 1 if operation_id(op) in LAST else 0)
    seed = Seed(system)
    seed.restore()
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        run_operation(operation, seed, system.url, failures, statuses)
        if operation_id(operation) in LAST and operation_id(operation) not in KEEP_DELETED:
            seed.restore()
    assert failures == [], "\n".join(failures[:40]) + "\n" + system.logs()[-3000:]
    assert len(statuses) == len(operations)  # every operation answered
    below_400 = {label for label, codes in statuses.items() if min(codes) < 400}
    never_succeeded = sorted(set(statuses) - below_400 - set(NEVER_BELOW_400))
    assert never_succeeded == [], "; ".join(f"{label} {sorted(statuses[label])} {bodies[label]}"
                                            for label in never_succeeded)
