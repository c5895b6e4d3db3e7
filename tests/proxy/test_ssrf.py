"""SSRF end to end: a system with no OUTBOUND_ALLOW_CIDRS refuses loopback in every spelling,
whether it comes from the provider's base URL or from an (enabled) Base-Url-Override; the
listeners see zero connections and so zero credentials."""

from __future__ import annotations

import pytest

from tests.proxy.builders import OAUTH2, connect, error, gateway, proxied
from tests.proxy.conftest import start


@pytest.fixture(scope="module")
def system(tmp_path_factory, upstream, sentinel):
    """Loopback not allowed; Base-Url-Override accepted, so that it meets the address policy."""
    running, _ = start(tmp_path_factory.mktemp("ssrf"), "sqlite", upstream, sentinel,
                       NANGO_PROXY_BASE_URL_OVERRIDE_ENABLED="true")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api(system):
    return gateway(system)


def refused(response) -> None:
    assert response.status_code == 400, response.text
    assert error(response) == {"code": "base_url_override_not_allowed",
                               "message": "This outbound URL is not allowed by server configuration."}


def test_the_provider_base_url_on_loopback_is_refused_without_the_allow_list(api, upstream):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    refused(proxied(api, "GET", "/user", key, connection_id))
    assert upstream.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "017700000001",
                                  "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "localhost", "0.0.0.0"])
def test_overrides_to_loopback_in_any_spelling_are_refused(api, upstream, sentinel, host):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    for server in (upstream, sentinel):
        refused(proxied(api, "GET", "/user", key, connection_id,
                        headers={"Base-Url-Override": f"http://{host}:{server.port}"}))
    assert upstream.connections == 0 and sentinel.connections == 0
    assert upstream.received == [] and sentinel.received == []


def test_an_override_with_user_information_is_refused(api, upstream):
    key, connection_id = connect(api, "echo-oauth", OAUTH2)
    response = proxied(api, "GET", "/user", key, connection_id,
                       headers={"Base-Url-Override": f"http://api.github.com@127.0.0.1:{upstream.port}"})
    refused(response)
    assert upstream.connections == 0
