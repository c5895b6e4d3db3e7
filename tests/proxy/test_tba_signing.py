"""Proxied calls of TBA connections (NetSuite token-based authentication): OAuth 1.0a signatures
with HMAC-SHA256 and the account id as `realm`, checked by an upstream that verifies them with the
standard library alone (the RFC 5849 verifier of test_oauth1_signing, with SHA-256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

import pytest

from common.errors import ApiError
from common.providers import Catalogue
from common.request_signing import OAuth1Signer, tba_realm, tba_signer
from services.proxy.injection import base_url
from tests.proxy.builders import error, gateway, proxied, unique
from tests.proxy.test_oauth1_signing import FORM, SignedApi, base_string, enc, oauth_header, signed_params
from tests.support.system import catalogue_system


def hmac_sha256(text: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{enc(consumer_secret)}&{enc(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()


def verify(method, target, headers, body, consumer_secret, token_secret, realm) -> bool:
    oauth = oauth_header(headers["authorization"])
    text = base_string(method, "http", headers["host"], target, signed_params(method, target, headers, body))
    return (oauth.get("realm") == realm and oauth.get("oauth_signature_method") == "HMAC-SHA256"
            and hmac.compare_digest(hmac_sha256(text, consumer_secret, token_secret), oauth["oauth_signature"]))


class TbaApi(SignedApi):
    """An upstream that answers 200 only to TBA requests signed for a consumer, token and account it
    knows; the account is also the first segment of the path (where the catalogue places it)."""

    def __init__(self):
        super().__init__()
        self.accounts: dict[str, str] = {}  # token id -> account id as in the path

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        auth = headers.get("authorization", "")
        oauth = oauth_header(auth) if auth.startswith("OAuth ") else {}
        consumer_secret = self.consumers.get(oauth.get("oauth_consumer_key", ""))
        token_secret = self.tokens.get(oauth.get("oauth_token", ""))
        account = self.accounts.get(oauth.get("oauth_token", ""), "")
        fresh = abs(time.time() - int(oauth.get("oauth_timestamp") or 0)) < 300
        in_path = urlsplit(target).path.startswith(f"/{account}/")
        with self.lock:
            replayed = any(r["oauth"].get("oauth_nonce") == oauth.get("oauth_nonce") for r in self.received)
            valid = (None not in (consumer_secret, token_secret) and fresh and not replayed and in_path
                     and verify(method, target, headers, body, consumer_secret, token_secret,
                                account.upper().replace("-", "_")))
            self.received.append({"method": method, "target": target, "headers": headers, "body": body,
                                  "oauth": oauth, "valid": valid})
            flaky_first = "/flaky/" in target and not any(r["target"] == target for r in self.received[:-1])
        if not valid:
            return 401, {"error": "invalid_signature"}
        return (503, {"error": "try again"}) if flaky_first else (200, {"verified": True, "target": target})


def tba_catalogue(api: TbaApi) -> dict:
    """A TBA provider whose base URL carries the account id, like NetSuite's host does."""
    return {"tba-api": {
        "auth_mode": "TBA",
        "proxy": {"base_url": api.url + "/${connectionConfig.accountId}/api", "query": {"format": "json"},
                  "verification": {"method": "GET", "endpoints": ["/whoami"]}},
        "connection_config": {"accountId": {"type": "string", "pattern": "^[A-Za-z0-9]+(-[A-Za-z0-9]+)?$"}}},
        "plain-key": {"auth_mode": "API_KEY", "proxy": {"base_url": api.url}}}


def test_the_signer_uses_hmac_sha256_and_the_realm():
    signer = OAuth1Signer("ck", "c&s", "tok", "t s", "HMAC-SHA256", "1234567_SB1")
    target = "/v1/record?filter[state]=open&q=%C3%A9+x"
    headers = {"host": "api.example.com:8080", "content-type": FORM}
    headers.update(signer("POST", "http://api.example.com:8080" + target, headers, b"a=1&b="))
    assert headers["authorization"].startswith('OAuth realm="1234567_SB1", ')
    assert verify("POST", target, headers, b"a=1&b=", "c&s", "t s", "1234567_SB1")
    assert not verify("POST", target, headers, b"a=2&b=", "c&s", "t s", "1234567_SB1")
    assert not verify("POST", target, headers, b"a=1&b=", "c&s", "t s", "7654321")
    assert not verify("POST", target, headers, b"a=1&b=", "c&s", "t x", "1234567_SB1")


def test_the_realm_is_netsuites_form_of_the_account_id():
    assert tba_realm("1234567") == "1234567" and tba_realm("1234567-sb1") == "1234567_SB1"


@pytest.mark.parametrize(("account", "host"), [("1234567", "1234567"), ("1234567-sb1", "1234567-sb1"),
                                               ("1234567_SB1", None), ("evil.example", None)])
def test_the_netsuite_entry_takes_the_account_id_in_its_hosts_form(account, host):
    entry = Catalogue.load().get("netsuite-tba")
    assert entry["auth_mode"] == "TBA"
    connection = {"provider": "netsuite-tba", "proxy": entry["proxy"], "connection_config": {"accountId": account}}
    if host is None:
        with pytest.raises(ApiError) as refused:
            base_url(connection, entry["connection_config"], None)
        assert refused.value.code == "invalid_connection_config"
    else:
        assert base_url(connection, entry["connection_config"], None) == f"https://{host}.suitetalk.api.netsuite.com"


@pytest.mark.parametrize(("connection", "code"), [
    ({"credentials": {"token_id": "t", "token_secret": "s"}, "connection_config": {"accountId": "1"}},
     "missing_client_credentials"),
    ({"oauth1": {"consumer_key": "k", "consumer_secret": "s"}, "credentials": {"token_id": "t"},
      "connection_config": {"accountId": "1"}}, "invalid_credentials"),
    ({"oauth1": {"consumer_key": "k", "consumer_secret": "s"}, "credentials": {"token_id": "t", "token_secret": "s"},
      "connection_config": {}}, "invalid_connection_config"),
    ({"oauth1": {"consumer_key": "k", "consumer_secret": "s"}, "credentials": {"token_id": "t", "token_secret": "s"},
      "connection_config": {"accountId": '1", oauth_token="x'}}, "invalid_connection_config"),
])
def test_a_tba_connection_without_what_signing_needs_is_refused(connection, code):
    with pytest.raises(ApiError) as refused:
        tba_signer(connection)
    assert refused.value.code == code and refused.value.status == 400


@pytest.fixture(scope="module")
def tba_api():
    api = TbaApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture(scope="module", params=("sqlite", "postgres"))
def system(request, tmp_path_factory, tba_api):
    with catalogue_system(tmp_path_factory.mktemp(f"tba-proxy-{request.param}"), request.param,
                          tba_catalogue(tba_api), PROXY_RETRY_BACKOFF="0.2") as running:
        yield running


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def tba_integration(api, tba_api, *, with_client: bool = True) -> str:
    """A TBA integration whose consumer key and secret the upstream knows (or one without them)."""
    key, body = unique("tba"), {}
    if with_client:
        consumer_key, consumer_secret = unique("ck"), "cs-" + secrets.token_hex(8) + "&+/ é"
        tba_api.consumers[consumer_key] = consumer_secret
        body = {"credentials": {"type": "TBA", "client_id": consumer_key, "client_secret": consumer_secret}}
    response = api.post("/integrations", json={"unique_key": key, "provider": "tba-api", **body})
    assert response.status_code == 200, response.text
    return key


def tba_token(tba_api, account: str) -> dict:
    token_id, token_secret = unique("tid"), "ts-" + secrets.token_hex(8) + "%=~"
    tba_api.tokens[token_id], tba_api.accounts[token_id] = token_secret, account
    return {"type": "TBA", "token_id": token_id, "token_secret": token_secret}


def import_tba(api, key: str, credentials: dict, connection_config: dict | None):
    body = {"provider_config_key": key, "connection_id": unique("conn"), "credentials": credentials}
    if connection_config is not None:
        body["connection_config"] = connection_config
    return api.post("/connections", json=body), body["connection_id"]


@pytest.fixture(scope="module")
def signed(api, tba_api):
    key = tba_integration(api, tba_api)
    response, connection_id = import_tba(api, key, tba_token(tba_api, "1234567-sb1"), {"accountId": "1234567-sb1"})
    assert response.status_code == 201, response.text
    return key, connection_id


def test_an_imported_tba_connection_is_stored_as_given(api, signed):
    key, connection_id = signed
    conn = api.get(f"/connections/{connection_id}", params={"provider_config_key": key}).json()
    assert set(conn["credentials"]) == {"type", "token_id", "token_secret"} and conn["credentials"]["type"] == "TBA"
    assert conn["connection_config"] == {"accountId": "1234567-sb1"}


def test_get_and_form_posts_are_signed_with_the_realm(api, tba_api, signed):
    response = proxied(api, "GET", "/record/v1/customer?limit=5&q=a%20b", *signed)
    assert response.status_code == 200, response.text
    got = tba_api.last()
    assert got["valid"] and got["target"] == "/1234567-sb1/api/record/v1/customer?limit=5&q=a%20b&format=json"
    assert got["oauth"]["realm"] == "1234567_SB1" and got["oauth"]["oauth_signature_method"] == "HMAC-SHA256"
    consumer_secret = tba_api.consumers[got["oauth"]["oauth_consumer_key"]]
    token_secret = tba_api.tokens[got["oauth"]["oauth_token"]]
    args = (got["method"], got["target"], got["headers"], got["body"])
    assert verify(*args, consumer_secret, token_secret, "1234567_SB1")
    assert not verify(*args, consumer_secret + "x", token_secret, "1234567_SB1")
    assert not verify(got["method"], got["target"].replace("limit=5", "limit=6"), got["headers"], got["body"],
                      consumer_secret, token_secret, "1234567_SB1")
    # The realm is not covered by the signature (RFC 5849 §3.4.1.3.1): the provider checks it against the token.
    tampered = {**got["headers"], "authorization": got["headers"]["authorization"].replace("1234567_SB1", "7654321")}
    assert not verify(got["method"], got["target"], tampered, got["body"], consumer_secret, token_secret,
                      "1234567_SB1")

    form = b"name=Acme%20Inc&subsidiary=1"
    response = proxied(api, "POST", "/record/v1/customer", *signed, data=form, headers={"Content-Type": FORM})
    assert response.status_code == 200, response.text
    got = tba_api.last()
    assert got["valid"] and got["body"] == form
    assert not verify("POST", got["target"], got["headers"], form.replace(b"=1", b"=2"), consumer_secret,
                      token_secret, "1234567_SB1")


def test_every_attempt_has_a_fresh_nonce(api, tba_api, signed):
    path = f"/flaky/{time.monotonic_ns()}"
    response = proxied(api, "GET", path, *signed, headers={"Retries": "1"})
    assert response.status_code == 200, response.text
    attempts = [r for r in tba_api.received if r["target"].startswith("/1234567-sb1/api" + path)]
    assert len(attempts) == 2 and all(r["valid"] for r in attempts)
    assert attempts[0]["oauth"]["oauth_nonce"] != attempts[1]["oauth"]["oauth_nonce"]


def test_the_connections_client_override_signs_instead_of_the_integrations(api, tba_api):
    key = tba_integration(api, tba_api, with_client=False)
    consumer_key, consumer_secret = unique("ck-own"), "own-" + secrets.token_hex(8)
    tba_api.consumers[consumer_key] = consumer_secret
    credentials = {**tba_token(tba_api, "7654321"),
                   "config_override": {"client_id": consumer_key, "client_secret": consumer_secret}}
    response, connection_id = import_tba(api, key, credentials, {"accountId": "7654321"})
    assert response.status_code == 201, response.text
    response = proxied(api, "GET", "/record/v1/item", key, connection_id)
    assert response.status_code == 200, response.text
    oauth = tba_api.last()["oauth"]
    assert oauth["oauth_consumer_key"] == consumer_key and oauth["realm"] == "7654321"


def test_a_wrong_token_secret_is_refused_by_the_provider(api, tba_api):
    key = tba_integration(api, tba_api)
    credentials = tba_token(tba_api, "1111")
    response, connection_id = import_tba(api, key, {**credentials, "token_secret": "not-it"}, {"accountId": "1111"})
    assert response.status_code == 201, response.text
    response = proxied(api, "GET", "/record", key, connection_id)
    assert response.status_code == 401 and response.json() == {"error": "invalid_signature"}


@pytest.mark.parametrize(("credentials", "config", "path"), [
    ({}, None, ["connection_config", "accountId"]),
    ({}, {"accountId": ""}, ["connection_config", "accountId"]),
    ({}, {"accountId": "evil.example/x"}, ["connection_config", "accountId"]),
    ({}, {"accountId": "123_SB1"}, ["connection_config", "accountId"]),  # the catalogue wants the host's form
    ({"token_secret": None}, {"accountId": "1"}, None),
    ({"extra": "x"}, {"accountId": "1"}, None),
    ({"config_override": {"client_id": "a", "scopes": "b"}}, {"accountId": "1"}, None),
])
def test_imports_are_validated_strictly(api, tba_api, credentials, config, path):
    key = tba_integration(api, tba_api)
    given = {k: v for k, v in {**tba_token(tba_api, "1"), **credentials}.items() if v is not None}
    response, _ = import_tba(api, key, given, config)
    assert response.status_code == 400, response.text
    assert error(response)["code"] == "invalid_body"
    if path:
        assert error(response)["errors"][0]["path"] == path and "accountId" in error(response)["message"]


def test_no_secret_reaches_the_logs(api, tba_api, signed, system):
    assert proxied(api, "GET", "/record", *signed).status_code == 200
    got = tba_api.last()
    logs = "\n".join(p.read_text(errors="replace") for p in system.log_dir.glob("*.log"))
    assert tba_api.tokens[got["oauth"]["oauth_token"]] not in logs
    assert tba_api.consumers[got["oauth"]["oauth_consumer_key"]] not in logs
