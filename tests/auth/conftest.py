"""The auth suites' system: the four processes with a provider catalogue that points at the test
OAuth server on loopback (which the egress layer is told to allow), on both database backends."""

from __future__ import annotations

import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.oauth1_server import OAuth1Server
from tests.support.oauth_server import OAuthServer
from tests.support.system import make_system

BACKENDS = ("sqlite", "postgres")

CATALOGUE = """
test-oauth:
    display_name: Test OAuth
    auth_mode: OAUTH2
    authorization_url: {url}/authorize
    token_url: {url}/token
    scope_separator: ','
    authorization_params:
        audience: test-api
    proxy:
        base_url: {url}
test-tenant:
    display_name: Test tenant OAuth
    auth_mode: OAUTH2
    authorization_url: http://127.0.0.1:{port}/t/${{connectionConfig.tenant}}/authorize
    token_url: http://127.0.0.1:{port}/t/${{connectionConfig.tenant}}/token
    disable_pkce: true
    proxy:
        base_url: {url}
test-apikey:
    display_name: Test API key
    auth_mode: API_KEY
    proxy:
        base_url: {url}
        headers:
            authorization: Bearer ${{apiKey}}
        verification:
            method: GET
            endpoints: [/verify]
test-basic:
    display_name: Test basic
    auth_mode: BASIC
    proxy:
        base_url: {url}
        verification:
            method: GET
            endpoints: [/verify]
test-oauth1:
    display_name: Test OAuth 1.0a
    auth_mode: OAUTH1
    request_url: {url1}/request_token
    request_params:
        app_name: authport-tests
    authorization_url: {url1}/authorize
    authorization_params:
        expiration: never
    token_url: {url1}/access_token
    signature_method: HMAC-SHA1
    proxy:
        base_url: {url1}
test-cc:
    display_name: Test client credentials
    auth_mode: OAUTH2_CC
    token_url: {url}/token
    token_params:
        grant_type: client_credentials
    proxy:
        base_url: {url}
"""


@pytest.fixture(scope="module")
def oauth_server():
    server = OAuthServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth1_server():
    server = OAuth1Server().start()
    yield server
    server.stop()


def write_catalogue(tmp_dir, server: OAuthServer, server1: OAuth1Server | None = None) -> str:
    path = tmp_dir / "providers.yaml"
    url1 = server1.url if server1 is not None else "http://127.0.0.1:9"  # no OAuth 1.0a provider
    path.write_text(CATALOGUE.format(url=server.url, port=server.port, url1=url1))
    return str(path)


@pytest.fixture(scope="module", params=BACKENDS)
def system(request, tmp_path_factory, oauth_server, oauth1_server):
    tmp_dir = tmp_path_factory.mktemp(f"auth-{request.param}")
    url = f"sqlite:///{tmp_dir / 'authport.db'}" if request.param == "sqlite" else create_postgres_database()
    catalogue = write_catalogue(tmp_dir, oauth_server, oauth1_server)
    running = make_system(tmp_dir, url, DEFAULT_PLAN="growth", PROVIDERS_FILE=catalogue,
                          OUTBOUND_ALLOW_CIDRS="127.0.0.0/8", LOG_LEVEL="debug").start()
    yield running
    running.stop()
    if request.param == "postgres":
        drop_postgres_database(url)
