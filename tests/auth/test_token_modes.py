"""The frontend SDK's other auth modes, end to end: UNAUTHENTICATED (`/auth/unauthenticated`), JWT
(`/auth/jwt`, ES256 and RS256), TWO_STEP (`/auth/two-step`), SIGNATURE (`/auth/signature`, WSSE) and
BILL (`/auth/bill`). Each is captured, stored, shown by `GET /connections/:id` and used by the proxy
(what reached the upstream is checked: a JWT with authlib's verifier and the public key, a WSSE
digest recomputed from Emarsys's documented formula). The token endpoints are the test OAuth
server's TWO_STEP and Bill-like routes; the same modes run in Chromium through `nango.auth()`."""

from __future__ import annotations

import base64
import hashlib
import re
import warnings
from datetime import UTC, datetime

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.api.builders import gateway, unique
from tests.auth.test_browser import browser, page_server  # noqa: F401 - the shared fixtures
from tests.auth.test_capture import public_key_of
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.support.system import catalogue_system
from tests.support.upstream import Upstream

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # authlib.jose is deprecated upstream; as a verifier it is fine
    from authlib.jose import JsonWebToken


def pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def catalogue(oauth_url: str, upstream_url: str) -> dict:
    proxy = {"base_url": upstream_url}
    return {
        "test-none": {"auth_mode": "NONE", "proxy": proxy},
        "test-jwt-es": {"auth_mode": "JWT", "proxy": proxy, "token": {
            "signing_key": "${credentials.privateKey}", "expires_in_ms": 1200000,
            "header": {"alg": "ES256", "kid": "${credentials.privateKeyId}", "typ": "JWT"},
            "payload": {"iss": "${credentials.issuerId}", "aud": "appstoreconnect-v1",
                        "scope": ["${connectionConfig.scope}"]}},
            "credentials": {"issuerId": {"type": "string"}, "privateKeyId": {"type": "string"},
                            "privateKey": {"type": "string", "secret": True}}},
        "test-jwt-rs": {"auth_mode": "JWT", "proxy": {**proxy, "headers": {"authorization": "JWT ${accessToken}"}},
                        "token": {"signing_key": "${credentials.privateKey}", "expires_in_ms": 300000,
                                  "header": {"alg": "RS256"},
                                  "payload": {"sub": "${credentials.account}.${credentials.user}",
                                              "iss": "${credentials.account}.${credentials.user}."
                                                     "${fingerprint(${credentials.privateKey})}"}},
                        "credentials": {"account": {"type": "string", "pattern": "^[A-Z0-9-]+$"},
                                        "user": {"type": "string"}, "privateKey": {"type": "string"}}},
        "test-two-step": {"auth_mode": "TWO_STEP", "proxy": proxy, "token_url": f"{oauth_url}/two-step/token",
                          "token_headers": {
                              "authorization": "Basic ${base64(${credentials.username}:${credentials.password})}"},
                          "token_response": {"token": "token", "token_expiration": "expires",
                                             "token_expiration_strategy": "expireAt"},
                          "credentials": {"username": {"type": "string"}, "password": {"type": "string"}}},
        "test-signature": {"auth_mode": "SIGNATURE", "signature": {"protocol": "WSSE"},
                           "token": {"expires_in_ms": 300000},
                           "proxy": {**proxy, "headers": {"x-wsse": "${accessToken}"}}},
        "test-bill": {"auth_mode": "BILL", "token_url": f"{oauth_url}/bill/login", "proxy": proxy},
    }


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory, oauth_server, upstream):
    oauth_server.basic_users["jane"] = "jane-pw"
    with catalogue_system(tmp_path_factory.mktemp("modes"), "sqlite",
                          catalogue(oauth_server.url, upstream.url)) as running:
        yield running


class Mode:
    def __init__(self, name, provider, route, body, shown, params=None):
        self.name, self.provider, self.route, self.body, self.shown = name, provider, route, body, shown
        self.params = params or {}


MODES = [
    Mode("none", "test-none", "unauthenticated", None, {}),
    Mode("jwt-es256", "test-jwt-es", "jwt",
         {"type": "JWT", "issuerId": "issuer-1", "privateKeyId": "KEY123", "privateKey": pem(EC_KEY)},
         {"type": "JWT", "issuerId": "issuer-1", "privateKeyId": "KEY123"}, {"scope": "GET /v1/apps"}),
    Mode("app-store", "test-jwt-es", "app-store",
         {"issuerId": "issuer-1", "privateKeyId": "KEY123", "privateKey": pem(EC_KEY)},
         {"type": "JWT", "issuerId": "issuer-1", "privateKeyId": "KEY123"}, {"scope": "GET /v1/apps"}),
    Mode("jwt-rs256", "test-jwt-rs", "jwt",
         {"type": "JWT", "account": "ACME-1", "user": "bot", "privateKey": pem(RSA_KEY).replace("\n", "\\n")},
         {"type": "JWT", "account": "ACME-1", "user": "bot"}),
    Mode("two-step", "test-two-step", "two-step", {"type": "TWO_STEP", "username": "jane", "password": "jane-pw"},
         {"type": "TWO_STEP", "username": "jane", "password": "jane-pw"}),
    Mode("signature", "test-signature", "signature", {"type": "SIGNATURE", "username": "api_user",
                                                      "password": "wsse-secret"},
         {"type": "SIGNATURE", "username": "api_user", "password": "wsse-secret"}),
    Mode("bill", "test-bill", "bill", {"username": "jane", "password": "jane-pw", "organization_id": "org-1",
                                       "dev_key": "dev-key-1"},
         {"type": "BILL", "username": "jane", "organization_id": "org-1", "dev_key": "dev-key-1", "user_id": "user-1"}),
]


def capture(system, key: str, route: str, body, **query):
    return requests.post(f"{system.url}/auth/{route}/{key}", json=body, params=query, timeout=30)


def proxied(system, key: str, connection_id: str, upstream):
    answer = requests.get(f"{system.url}/proxy/echo", headers={
        "Authorization": f"Bearer {system.dev_key}", "Connection-Id": connection_id, "Provider-Config-Key": key},
        timeout=30)
    assert answer.status_code == 200, answer.text
    return upstream.last()


def check_upstream(mode: Mode, received, credentials: dict, oauth_server) -> None:
    """What the proxy sent for each mode, checked independently of Authport's code."""
    auth = received.header("authorization") or ""
    if mode.name == "none":
        assert auth == "" and received.header("x-wsse") is None
    elif mode.name.startswith("jwt") or mode.name == "app-store":
        token = auth.split(" ", 1)[1]
        assert token == credentials["token"]
        es256 = mode.name in ("jwt-es256", "app-store")
        key = (EC_KEY if es256 else RSA_KEY).public_key()
        claims = JsonWebToken(["ES256", "RS256"]).decode(token, key)
        claims.validate()
        assert claims["exp"] - claims["iat"] == (1200 if es256 else 300)
        if es256:
            assert auth.startswith("Bearer ") and claims.header["kid"] == "KEY123"
            assert (claims["iss"], claims["aud"]) == ("issuer-1", "appstoreconnect-v1")
            assert claims["scope"] == ["GET /v1/apps"]
        else:
            assert auth.startswith("JWT ") and claims["sub"] == "ACME-1.bot"
            # Snowflake's key-pair iss: the public key's fingerprint, as its docs compute it.
            der = RSA_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
            assert claims["iss"] == "ACME-1.bot.SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    elif mode.name == "two-step":
        assert auth == f"Bearer {credentials['token']}" and credentials["token"] in oauth_server.two_step_tokens
    elif mode.name == "signature":
        fields = dict(re.findall(r'(\w+)="([^"]*)"', received.header("x-wsse")))
        digest = hashlib.sha1((fields["Nonce"] + fields["Created"] + "wsse-secret").encode()).hexdigest()
        assert fields["Username"] == "api_user"
        assert fields["PasswordDigest"] == base64.b64encode(digest.encode()).decode()
        created = datetime.strptime(fields["Created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - created).total_seconds()) < 300
    elif mode.name == "bill":
        assert received.header("sessionId") == credentials["session_id"] in oauth_server.bill_sessions
        assert received.header("devKey") == "dev-key-1" and auth == ""


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_each_mode_is_captured_stored_shown_and_proxied(system, oauth_server, upstream, mode):
    api = gateway(system)
    key = make_integration(api, mode.provider)
    token = create_session(api, allowed_integrations=[key])["token"]
    query = {f"params[{k}]": v for k, v in mode.params.items()}
    answer = capture(system, key, mode.route, mode.body, connect_session_token=token, **query)
    assert answer.status_code == 200, answer.text
    assert answer.json()["providerConfigKey"] == key
    connection_id = answer.json()["connectionId"]
    shown = api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).json()
    credentials = shown["credentials"]
    assert {k: credentials.get(k) for k in mode.shown} == mode.shown, credentials
    if mode.name != "none":
        assert credentials["expires_at"] > datetime.now(UTC).isoformat()
        assert credentials.get("token") or credentials.get("session_id")
    assert shown["end_user"] is not None
    check_upstream(mode, proxied(system, key, connection_id, upstream), credentials, oauth_server)


BAD = [
    ("jwt missing field", "test-jwt-es", "jwt", {"type": "JWT", "issuerId": "i", "privateKey": "x"},
     400, "invalid_body", "privateKeyId"),
    ("jwt not a pem", "test-jwt-es", "jwt", {"type": "JWT", "issuerId": "i", "privateKeyId": "k",
                                            "privateKey": "not a key"}, 400, "invalid_body", "privateKey"),
    ("jwt rsa key for es256", "test-jwt-es", "jwt", {"type": "JWT", "issuerId": "i", "privateKeyId": "k",
                                                    "privateKey": pem(RSA_KEY)}, 400, "invalid_body", "privateKey"),
    ("jwt unknown field", "test-jwt-rs", "jwt", {"account": "A", "user": "u", "privateKey": "k", "extra": "x"},
     400, "invalid_body", "extra"),
    ("jwt pattern", "test-jwt-rs", "jwt", {"account": "a b", "user": "u", "privateKey": pem(RSA_KEY)},
     400, "invalid_body", "account"),
    ("two-step refused", "test-two-step", "two-step", {"type": "TWO_STEP", "username": "jane", "password": "no"},
     400, "invalid_credentials", None),
    ("signature quote", "test-signature", "signature", {"type": "SIGNATURE", "username": 'a"b', "password": "p"},
     400, "invalid_body", "username"),
    ("bill refused", "test-bill", "bill", {"username": "jane", "password": "jane-pw", "organization_id": "other",
                                           "dev_key": "dev-key-1"}, 400, "invalid_credentials", None),
    ("bill missing", "test-bill", "bill", {"username": "jane", "password": "jane-pw", "organization_id": "org-1"},
     400, "invalid_body", "dev_key"),
    ("wrong mode", "test-none", "jwt", {"type": "JWT", "privateKey": "k"}, 400, "invalid_auth_mode", None),
    ("none with a body", "test-none", "unauthenticated", {"apiKey": "x"}, 400, "invalid_body", None),
]


def test_bad_captures_are_refused_naming_the_field_and_write_nothing(system):
    api = gateway(system)
    for name, provider, route, body, status, code, field in BAD:
        key = make_integration(api, provider)
        token = create_session(api, allowed_integrations=[key])["token"]
        answer = capture(system, key, route, body, connect_session_token=token)
        error = answer.json()["error"]
        assert (answer.status_code, error["code"]) == (status, code), (name, answer.text)
        if field:
            assert [e["path"] for e in error["errors"]] == [[field]], name
        assert "Traceback" not in answer.text and "jane-pw" not in answer.text
        assert api.get("/connections", params={"integrationId": key}).json()["connections"] == [], name


def test_tokens_are_renewed_before_they_expire_and_made_for_imports(system, oauth_server):
    api = gateway(system)
    key = make_integration(api, "test-two-step")
    oauth_server.two_step_lifetime = 60  # inside the 15-minute buffer: every read renews it
    try:
        body = next(m for m in MODES if m.name == "two-step").body
        answer = capture(system, key, "two-step", body, public_key=public_key_of(system))
        assert answer.status_code == 200, answer.text
        connection_id = answer.json()["connectionId"]
        reads = [api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).json()
                 for _ in range(2)]
    finally:
        oauth_server.two_step_lifetime = 3600
    tokens = [r["credentials"]["token"] for r in reads]
    assert tokens[0] != tokens[1] and set(tokens) <= set(oauth_server.two_step_tokens)
    # A JWT connection imported with its fields only gets its token at the first read.
    jwt_key = make_integration(api, "test-jwt-rs")
    imported = api.post("/connections", json={"provider_config_key": jwt_key, "connection_id": unique("imp"),
                                              "credentials": next(m for m in MODES if m.name == "jwt-rs256").body})
    assert imported.status_code == 201, imported.text
    read = api.get(f"/connections/{imported.json()['connection_id']}", params={"provider_config_key": jwt_key})
    claims = JsonWebToken(["RS256"]).decode(read.json()["credentials"]["token"], RSA_KEY.public_key())
    assert claims["sub"] == "ACME-1.bot"


def test_the_frontend_sdk_runs_each_mode_in_chromium(system, oauth_server, browser, page_server):  # noqa: F811
    api = gateway(system)
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(page_server.url)
    tab.wait_for_function("window.ready === true")
    script = """async ([host, token, key, credentials, params]) => {
      const { default: Nango } = await import('/sdk/index.js');
      const nango = new Nango({ host, connectSessionToken: token });
      try {
        return { ok: credentials ? await nango.auth(key, { credentials, params })
                                 : await nango.create(key, { params }) };
      } catch (err) { return { error: { type: err.type, message: err.message } }; }
    }"""
    for mode in [*[m for m in MODES if m.route != "app-store"], BAD[2]]:
        is_bad = isinstance(mode, tuple)
        provider, body = (mode[1], mode[3]) if is_bad else (mode.provider, mode.body)
        key = make_integration(api, provider)
        token = create_session(api, allowed_integrations=[key])["token"]
        outcome = tab.evaluate(script, [system.url, token, key, body, {} if is_bad else mode.params])
        if is_bad:
            assert outcome["error"]["type"] == "invalid_body" and "privateKey" in outcome["error"]["message"]
            continue
        assert "ok" in outcome, (mode.name, outcome)
        shown = api.get(f"/connections/{outcome['ok']['connectionId']}", params={"provider_config_key": key}).json()
        assert {k: shown["credentials"].get(k) for k in mode.shown} == mode.shown, mode.name
    context.close()
    logs = system.logs()
    assert not [s for s in ("jane-pw", "wsse-secret", "BEGIN PRIVATE KEY", "canary-") if s in logs]


def test_the_connect_page_asks_for_each_modes_fields(system, browser):  # noqa: F811
    api = gateway(system)
    keys = {name: make_integration(api, provider) for name, provider in (
        ("none", "test-none"), ("two-step", "test-two-step"), ("jwt", "test-jwt-es"))}
    user = unique("page-user")
    link = create_session(api, allowed_integrations=list(keys.values()), end_user={"id": user})["connect_link"]
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(link)
    fill = {"none": {}, "two-step": {"username": "jane", "password": "jane-pw"},
            "jwt": {"issuerId": "issuer-1", "privateKeyId": "KEY123", "privateKey": pem(EC_KEY)}}
    for name, key in keys.items():
        tab.click(f"#integration-{key} button")
        tab.wait_for_selector(f"#field-{next(iter(fill[name]))}" if fill[name] else "#detail-view:not([hidden])")
        assert sorted(i.get_attribute("name") for i in tab.query_selector_all("#fields input")) == sorted(fill[name])
        for field, value in fill[name].items():
            tab.fill(f"#field-{field}", value)  # a pasted PEM loses its line breaks in a text field
        tab.click("#connect-submit")
        tab.wait_for_selector("#success-view:not([hidden])", timeout=30_000)
        tab.click("#done")
    context.close()
    made = api.get("/connections", params={"endUserId": user}).json()["connections"]
    assert sorted(c["provider_config_key"] for c in made) == sorted(keys.values())
