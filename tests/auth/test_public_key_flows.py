"""Public-key auth flows never take over a connection that exists (the hardening issue, item 1).

A frontend's public key is readable by anyone who loads the page. Every flow that takes a
connection id from the browser is tried against a connection the backend imported: without the
backend's `hmac` it is refused and the connection is unchanged (credentials and the config a
templated base URL is built from); with it, the flow may replace the connection. A flow that
started for a new id is refused at the callback when that id was created meanwhile."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys

import pytest
import requests
import yaml

from tests.api.builders import gateway, unique
from tests.auth.conftest import BACKENDS, CATALOGUE
from tests.auth.popup import Socket, run_popup
from tests.auth.test_capture import public_key_of
from tests.auth.test_connect_sessions import create_session, make_integration
from tests.auth.test_oauth1 import oauth1_integration
from tests.proxy.test_aws_sigv4 import ROLE, Sts, sts_integration
from tests.support.system import ROOT, catalogue_system

EXTRA = {
    "test-tba": {"auth_mode": "TBA", "proxy": {"base_url": "http://127.0.0.1:9/${connectionConfig.accountId}"},
                 "connection_config": {"accountId": {"type": "string"}}},
}


def token_modes(url: str) -> dict:
    """One provider per token mode (the tokens come from the test OAuth server)."""
    return {
        "test-none": {"auth_mode": "NONE"},
        "test-jwt": {"auth_mode": "JWT", "token": {"signing_key": "${credentials.secret}", "header": {"alg": "HS256"},
                                                   "payload": {"iss": "${credentials.issuer}"}},
                     "credentials": {"issuer": {"type": "string"}, "secret": {"type": "string"}}},
        "test-two-step": {"auth_mode": "TWO_STEP", "token_url": f"{url}/two-step/token", "token_headers": {
            "authorization": "Basic ${base64(${credentials.username}:${credentials.password})}"},
            "token_response": {"token": "token"}},
        "test-signature": {"auth_mode": "SIGNATURE", "signature": {"protocol": "WSSE"}},
        "test-bill": {"auth_mode": "BILL", "token_url": f"{url}/bill/login"},
    }


@pytest.fixture(scope="module")
def sts():
    server = Sts()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory, oauth_server, oauth1_server, sts):
    catalogue = yaml.safe_load(CATALOGUE.format(url=oauth_server.url, port=oauth_server.port, url1=oauth1_server.url))
    aws = {"test-aws-sts": {"auth_mode": "AWS_SIGV4", "token_url": sts.url + "/"}}
    with catalogue_system(tmp_path_factory.mktemp(f"public-{request.param}"), request.param,
                          {**catalogue, **EXTRA, **token_modes(oauth_server.url), **aws}) as running:
        yield running


_HMAC_KEYS: dict[int, str] = {}  # per system; the admin commands that may change it forget it


def admin(system, *args: str) -> str:
    if args[:1] == ("hmac",) and args[1:2] != ("show",):
        _HMAC_KEYS.pop(id(system), None)
    done = subprocess.run([sys.executable, "-m", "services.store.admin", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **system.env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def hmac_key(system) -> str:
    if id(system) not in _HMAC_KEYS:
        _HMAC_KEYS[id(system)] = admin(system, "hmac", "show", "--env", "dev").splitlines()[0].rsplit(" ", 1)[1]
    return _HMAC_KEYS[id(system)]


def digest(key: str, provider_config_key: str, connection_id: str | None = None) -> str:
    message = f"{provider_config_key}:{connection_id}" if connection_id else provider_config_key
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


class Flow:
    """One browser flow: how its integration is made, the credentials an existing connection holds,
    and how the browser submits it."""

    def __init__(self, name, provider, existing, body=None, popup=False, params=None):
        self.name, self.provider, self.existing, self.body = name, provider, existing, body
        self.popup, self.params = popup, params or {}

    def integration(self, api, oauth_server, oauth1_server) -> str:
        if self.provider == "test-oauth1":
            return oauth1_integration(api, oauth1_server)
        if self.provider == "test-oauth":
            client = oauth_server.add_client()
            return make_integration(api, "test-oauth", client_id=client.client_id, client_secret=client.client_secret)
        if self.provider == "test-tba":
            key = unique("test-tba")
            response = api.post("/integrations", json={"unique_key": key, "provider": "test-tba", "credentials": {
                "type": "TBA", "client_id": "consumer", "client_secret": "consumer-secret"}})
            assert response.status_code == 200, response.text
            return key
        if self.provider == "test-aws-sts":
            return sts_integration(api)
        return make_integration(api, self.provider)

    def submit(self, system, key: str, oauth_server, **query) -> tuple[int, str]:
        """(status, error code or "") of the browser's submission."""
        query = {**{f"params[{k}]": v for k, v in self.params.items()}, **query}
        if self.popup:
            answer = requests.get(f"{system.url}/oauth/connect/{key}", params=query, allow_redirects=False,
                                  timeout=30)
            for code in ("connection_already_exists", "invalid_hmac", "missing_hmac"):
                if code in answer.text:
                    return answer.status_code, code
            return answer.status_code, ""
        body = self.body(oauth_server) if callable(self.body) else self.body
        answer = requests.post(f"{system.url}{self.path(key)}", json=body, params=query, timeout=30)
        return answer.status_code, (answer.json().get("error") or {}).get("code", "") if answer.content else ""

    def path(self, key: str) -> str:
        return {"api-key": "/api-auth/api-key/", "basic": "/api-auth/basic/", "client-credentials": "/oauth2/auth/",
                "tba": "/auth/tba/", "unauthenticated": "/auth/unauthenticated/", "jwt": "/auth/jwt/",
                "two-step": "/auth/two-step/", "signature": "/auth/signature/", "bill": "/auth/bill/",
                "aws-sigv4": "/auth/aws-sigv4/"}[self.name] + key


def cc_body(oauth_server) -> dict:
    client = oauth_server.add_client()
    return {"client_id": client.client_id, "client_secret": client.client_secret}


FLOWS = [
    Flow("api-key", "test-apikey", {"type": "API_KEY", "apiKey": "victim-key"}, {"apiKey": "attacker-key"}),
    Flow("basic", "test-basic", {"type": "BASIC", "username": "victim", "password": "victim-pw"},
         {"username": "attacker", "password": "attacker-pw"}),
    Flow("client-credentials", "test-cc", {"type": "OAUTH2_CC", "token": "victim-token", "client_id": "v",
                                           "client_secret": "victim-secret"}, cc_body),
    Flow("tba", "test-tba", {"type": "TBA", "token_id": "victim-id", "token_secret": "victim-secret"},
         {"token_id": "attacker-id", "token_secret": "attacker-secret"}, params={"accountId": "1234567"}),
    Flow("unauthenticated", "test-none", {"type": "NONE"}, None),
    Flow("jwt", "test-jwt", {"type": "JWT", "issuer": "victim", "secret": "victim-secret", "token": "victim-jwt",
                             "expires_at": "2099-01-01T00:00:00Z"},
         {"issuer": "attacker", "secret": "attacker-secret"}),
    Flow("two-step", "test-two-step", {"type": "TWO_STEP", "username": "victim", "password": "victim-pw",
                                       "token": "victim-token", "expires_at": "2099-01-01T00:00:00Z"},
         {"type": "TWO_STEP", "username": "attacker", "password": "attacker-pw"}),
    Flow("signature", "test-signature", {"type": "SIGNATURE", "username": "victim", "password": "victim-pw",
                                         "token": "victim-wsse", "expires_at": "2099-01-01T00:00:00Z"},
         {"type": "SIGNATURE", "username": "attacker", "password": "attacker-pw"}),
    Flow("bill", "test-bill", {"type": "BILL", "username": "victim", "password": "victim-pw",
                               "organization_id": "org-1", "dev_key": "dev-key-1", "session_id": "victim-session",
                               "expires_at": "2099-01-01T00:00:00Z"},
         {"username": "attacker", "password": "attacker-pw", "organization_id": "org-1", "dev_key": "dev-key-1"}),
    Flow("aws-sigv4", "test-aws-sts", {"type": "AWS_SIGV4", "role_arn": ROLE, "access_key_id": "victim",
                                       "secret_access_key": "victim-secret", "expires_at": "2099-01-01T00:00:00Z"},
         {"role_arn": ROLE}),
    Flow("oauth2", "test-oauth", {"type": "OAUTH2", "access_token": "victim-token"}, popup=True),
    Flow("oauth1", "test-oauth1", {"type": "OAUTH1", "oauth_token": "victim-token",
                                   "oauth_token_secret": "victim-secret"}, popup=True),
]


def existing_connection(api, key: str, flow: Flow) -> str:
    connection_id = unique("victim")
    response = api.post("/connections", json={"provider_config_key": key, "connection_id": connection_id,
                                              "credentials": flow.existing,
                                              "connection_config": {"accountId": "victim", "instance": "victim"}})
    assert response.status_code == 201, response.text
    return connection_id


def stored(api, key: str, connection_id: str) -> dict:
    answer = api.get(f"/connections/{connection_id}", params={"provider_config_key": key})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {"credentials": body["credentials"], "connection_config": body["connection_config"]}


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_public_key_cannot_replace_an_existing_connection(system, oauth_server, oauth1_server, flow):
    api = gateway(system)
    key = flow.integration(api, oauth_server, oauth1_server)
    victim = existing_connection(api, key, flow)
    before = stored(api, key, victim)
    public = public_key_of(system)
    attack = {"instance": "attacker.example", "accountId": "7654321"}
    plain = flow.submit(system, key, oauth_server, public_key=public, connection_id=victim,
                        **{f"params[{k}]": v for k, v in attack.items()})
    assert plain == ((400 if flow.popup else 409), "connection_already_exists")
    forged = flow.submit(system, key, oauth_server, public_key=public, connection_id=victim,
                         hmac=digest("not-the-key", key, victim))
    assert forged == (400, "invalid_hmac")
    other_id = flow.submit(system, key, oauth_server, public_key=public, connection_id=victim,
                           hmac=digest(hmac_key(system), key, "another-id"))
    assert other_id == (400, "invalid_hmac")
    assert stored(api, key, victim) == before


@pytest.mark.parametrize("flow", [f for f in FLOWS if not f.popup], ids=[f.name for f in FLOWS if not f.popup])
def test_the_backends_hmac_lets_a_public_key_flow_replace_it(system, oauth_server, oauth1_server, flow):
    api = gateway(system)
    key = flow.integration(api, oauth_server, oauth1_server)
    oauth_server.api_keys.add("attacker-key")
    oauth_server.basic_users["attacker"] = "attacker-pw"
    victim = existing_connection(api, key, flow)
    status, code = flow.submit(system, key, oauth_server, public_key=public_key_of(system), connection_id=victim,
                               hmac=digest(hmac_key(system), key, victim))
    assert (status, code) == (200, "")
    assert stored(api, key, victim)["credentials"] != flow.existing


def test_oauth_popup_with_hmac_replaces_and_a_connection_made_meanwhile_is_not_replaced(system, oauth_server,
                                                                                        oauth1_server):
    api = gateway(system)
    flow = next(f for f in FLOWS if f.name == "oauth2")
    key = flow.integration(api, oauth_server, oauth1_server)
    victim = existing_connection(api, key, flow)
    public = public_key_of(system)
    socket = Socket(system.url)
    answer, _ = run_popup(system.url, key, public_key=public, connection_id=victim, ws_client_id=socket.client_id,
                          hmac=digest(hmac_key(system), key, victim))
    assert answer.status_code == 200, answer.text
    assert socket.result()["message_type"] == "success"
    assert stored(api, key, victim)["credentials"]["access_token"] in oauth_server.issued_access_tokens()

    # Started for an id nobody had; the backend creates that id while the end user is at the provider.
    later = unique("later")
    browser = requests.Session()
    to_provider = browser.get(f"{system.url}/oauth/connect/{key}", params={"public_key": public,
                                                                          "connection_id": later},
                              allow_redirects=False, timeout=30)
    assert to_provider.status_code == 302
    callback = browser.get(to_provider.headers["Location"], allow_redirects=False, timeout=30).headers["Location"]
    api.post("/connections", json={"provider_config_key": key, "connection_id": later,
                                   "credentials": {"type": "OAUTH2", "access_token": "made-meanwhile"}})
    finished = browser.get(callback, timeout=30)
    assert finished.status_code == 400 and "connection_already_exists" in finished.text
    assert stored(api, key, later)["credentials"]["access_token"] == "made-meanwhile"


def test_new_connections_and_reconnect_sessions(system, oauth_server, oauth1_server):
    api = gateway(system)
    flow = FLOWS[0]
    key = flow.integration(api, oauth_server, oauth1_server)
    oauth_server.api_keys.update({"attacker-key", "renewed-key"})
    public = public_key_of(system)
    fresh = unique("fresh")
    assert flow.submit(system, key, oauth_server, public_key=public, connection_id=fresh) == (200, "")
    assert flow.submit(system, key, oauth_server, public_key=public) == (200, "")  # a generated id
    # A reconnect session (made with the secret key) replaces its own connection, and only that one.
    victim = existing_connection(api, key, flow)
    session = reconnect_session(api, key, victim)
    answer = requests.post(f"{system.url}/api-auth/api-key/{key}", json={"apiKey": "renewed-key"},
                           params={"connect_session_token": session}, timeout=30)
    assert answer.status_code == 200 and answer.json()["connectionId"] == victim
    assert stored(api, key, victim)["credentials"]["apiKey"] == "renewed-key"


def reconnect_session(api, key: str, connection_id: str) -> str:
    response = api.post("/connect/sessions/reconnect", json={
        "connection_id": connection_id, "integration_id": key, "end_user": {"id": unique("user")}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["token"]


def test_hmac_enabled_requires_it_on_every_public_key_flow(system, oauth_server, oauth1_server):
    api = gateway(system)
    flow = FLOWS[0]
    key = flow.integration(api, oauth_server, oauth1_server)
    oauth_server.api_keys.add("attacker-key")
    public = public_key_of(system)
    admin(system, "hmac", "enable", "--env", "dev")
    try:
        assert flow.submit(system, key, oauth_server, public_key=public) == (400, "missing_hmac")
        assert flow.submit(system, key, oauth_server, public_key=public, connection_id="x1") == (400, "missing_hmac")
        assert flow.submit(system, key, oauth_server, public_key=public, connection_id="x1",
                           hmac=digest(hmac_key(system), key)) == (400, "invalid_hmac")
        secret = hmac_key(system)
        assert flow.submit(system, key, oauth_server, public_key=public, hmac=digest(secret, key)) == (200, "")
        assert flow.submit(system, key, oauth_server, public_key=public, connection_id="x1",
                           hmac=digest(secret, key, "x1")) == (200, "")
        popup = next(f for f in FLOWS if f.name == "oauth2")
        okey = popup.integration(api, oauth_server, oauth1_server)
        assert popup.submit(system, okey, oauth_server, public_key=public) == (400, "missing_hmac")
        # A connect session token is the backend's own proof: no hmac needed.
        session = create_session(api, allowed_integrations=[key])["token"]
        assert flow.submit(system, key, oauth_server, connect_session_token=session) == (200, "")
        rotated = admin(system, "hmac", "rotate", "--env", "dev").rsplit(" ", 1)[1].strip()
        assert rotated != secret
        assert flow.submit(system, key, oauth_server, public_key=public, hmac=digest(secret, key)) == \
            (400, "invalid_hmac")
    finally:
        admin(system, "hmac", "disable", "--env", "dev")
