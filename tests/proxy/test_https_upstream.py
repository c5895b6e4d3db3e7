"""End to end: the real proxy service calls an HTTPS upstream whose certificate was issued by a
private CA, trusted the operator's way (`SSL_CERT_FILE` in the services' environment); the
certificate is still verified against the provider's host name."""

from __future__ import annotations

import pytest
import yaml

from tests.proxy.builders import connect, echo, error, gateway, proxied
from tests.proxy.conftest import SOURCE_IPS
from tests.support.system import make_system
from tests.support.tls import EchoServer, TestCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="module")
def upstreams(ca):
    """An upstream certified for localhost, and one whose certificate names another host."""
    # localhost may also resolve to ::1; with IPv4-only EGRESS_SOURCE_IPS the egress picks 127.0.0.1.
    good = EchoServer("127.0.0.1", ca.server_context(dns=("localhost",)))
    wrong = EchoServer("127.0.0.1", ca.server_context(dns=("elsewhere.test",)))
    yield good, wrong
    good.stop()
    wrong.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory, ca, upstreams):
    tmp_dir = tmp_path_factory.mktemp("https-upstream")
    path = tmp_dir / "providers.yaml"
    path.write_text(yaml.safe_dump({
        name: {"auth_mode": "API_KEY", "proxy": {"base_url": f"https://localhost:{server.port}/api",
                                                 "headers": {"x-api-key": "${apiKey}"}}}
        for name, server in zip(("tls-echo", "tls-wrong-name"), upstreams, strict=True)}))
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", PROVIDERS_FILE=str(path),
                          SSL_CERT_FILE=str(ca.pem_path), OUTBOUND_ALLOW_CIDRS="127.0.0.1/32,::1/128",
                          EGRESS_SOURCE_IPS=",".join(SOURCE_IPS), PROXY_TOTAL_TIMEOUT="8").start()
    yield running
    running.stop()


def test_a_proxied_call_reaches_an_https_upstream_certified_by_a_private_ca(system, upstreams):
    good, wrong = upstreams
    api = gateway(system)
    key, connection_id = connect(api, "tls-echo", {"type": "API_KEY", "apiKey": "tls-e2e-secret"})
    got = echo(proxied(api, "GET", "/v1/me?page=2", key, connection_id))
    assert got["target"] == "/api/v1/me?page=2"
    assert got["headers"]["x-api-key"] == "tls-e2e-secret"
    assert got["headers"]["host"] == f"localhost:{good.port}"
    assert got["peer"] in SOURCE_IPS
    assert set(good.server_names) == {"localhost"}

    key, connection_id = connect(api, "tls-wrong-name", {"type": "API_KEY", "apiKey": "never-sent"})
    response = proxied(api, "GET", "/v1/me", key, connection_id)
    assert response.status_code == 502, response.text
    assert error(response)["code"] == "upstream_unreachable"
    assert "never-sent" not in response.text
    assert wrong.received == [] and wrong.connections >= 1
