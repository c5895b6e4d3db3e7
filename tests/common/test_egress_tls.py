"""The egress layer against TLS and IPv6 upstreams on loopback: certificates from a private CA
trusted through `SSL_CERT_FILE`, verified against the URL's host name while the connection goes to
the checked address; HTTPS through a forward proxy's CONNECT tunnel; IPv6 destinations and
source addresses."""

from __future__ import annotations

import json

import pytest

from common import addresses
from common.egress import Egress, EgressConfig, OutboundRefused, UpstreamUnreachable
from tests.support.forward_proxy import ForwardProxy
from tests.support.tls import EchoServer, TestCA

SECRET = "Bearer tls-secret-3f9c"


def egress(allow: str = "127.0.0.0/8", resolver=None, **config) -> Egress:
    return Egress(EgressConfig(allow=addresses.parse_networks(allow), **config), resolver=resolver)


def resolves_to(*found: str):
    """A resolver that answers `found` for any name, as a DNS record pointing at loopback would."""
    return lambda host, port: list(found)


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def trusted(monkeypatch, ca) -> TestCA:
    """The private CA trusted the way an operator would: OpenSSL's SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.pem_path))
    return ca


@pytest.fixture
def serve():
    """Start TLS (or plain, without a context) echo servers; all stopped after the test."""
    started = []

    def start(host: str, context=None, port: int = 0) -> EchoServer:
        started.append(EchoServer(host, context, port))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def proxy():
    forward = ForwardProxy(host="127.0.0.4", source="127.0.0.5")
    yield forward
    forward.stop()


def refused_before_sending(server: EchoServer, call) -> UpstreamUnreachable:
    """`call()` fails as unreachable (a 502 at the proxy) and the server got no request."""
    with pytest.raises(UpstreamUnreachable) as caught:
        call()
    assert caught.value.status == 502
    assert server.received == []
    return caught.value


# --- direct HTTPS -------------------------------------------------------------------------------

def test_a_host_name_is_verified_at_the_checked_address(trusted, serve):
    server = serve("127.0.0.7", trusted.server_context(dns=("api.test",)))
    out = egress(resolver=resolves_to("127.0.0.7"))
    response = out.send("GET", server.url_for("api.test") + "/v1/me?x=1", headers={"Authorization": SECRET})
    assert response.status == 200
    assert json.loads(response.read())["target"] == "/v1/me?x=1"
    assert server.last().header("Authorization") == SECRET
    assert server.last().header("Host") == f"api.test:{server.port}"
    assert server.server_names == ["api.test"]  # SNI is the URL's name, not the address


def test_localhost_is_reached_at_the_first_address_the_system_resolver_gives(trusted, serve):
    first = addresses.system_resolver("localhost", 443)[0]
    server = serve(first, trusted.server_context(dns=("localhost",)))
    response = egress(allow="127.0.0.0/8,::1/128").send("GET", server.url_for("localhost") + "/hello")
    assert response.status == 200 and json.loads(response.read())["target"] == "/hello"
    assert server.server_names == ["localhost"]


@pytest.mark.parametrize("address", ["127.0.0.7", "::1"])
def test_an_address_url_is_verified_against_the_certificates_ip(trusted, serve, address):
    server = serve(address, trusted.server_context(ips=(address,)))
    response = egress(allow="127.0.0.0/8,::1/128").send("GET", server.url + "/ip", headers={"Authorization": SECRET})
    assert response.status == 200
    response.read()
    assert server.last().header("Authorization") == SECRET
    assert server.server_names == [None]  # no SNI for an address


def test_ssl_cert_file_decides_whether_the_private_ca_is_trusted(monkeypatch, ca, serve):
    server = serve("127.0.0.7", ca.server_context(dns=("api.test",)))
    out = egress(resolver=resolves_to("127.0.0.7"))
    url = server.url_for("api.test") + "/"
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    refused_before_sending(server, lambda: out.send("GET", url, headers={"Authorization": SECRET}))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.pem_path))  # read for each new connection
    assert out.send("GET", url).status == 200


def test_a_certificate_from_another_ca_is_refused_before_anything_is_sent(trusted, serve, tmp_path):
    stranger = TestCA(tmp_path / "stranger", name="Not Trusted CA")
    server = serve("127.0.0.7", stranger.server_context(dns=("api.test",)))
    out = egress(resolver=resolves_to("127.0.0.7"))
    error = refused_before_sending(server, lambda: out.send("GET", server.url_for("api.test") + "/",
                                                            headers={"Authorization": SECRET}))
    assert server.connections == 1  # it did connect: the handshake is what failed
    assert "secret" not in error.message


@pytest.mark.parametrize("certified, url_host", [
    ({"dns": ("other.test",)}, "api.test"),
    ({"ips": ("127.0.0.7",)}, "api.test"),  # the name is verified, not the address connected to
    ({"dns": ("api.test",)}, "127.0.0.7"),
    ({"dns": ("*.api.test",)}, "api.test"),
])
def test_a_certificate_for_another_name_is_refused(trusted, serve, certified, url_host):
    server = serve("127.0.0.7", trusted.server_context(**certified))
    out = egress(resolver=resolves_to("127.0.0.7"))
    refused_before_sending(server, lambda: out.send("GET", server.url_for(url_host) + "/",
                                                    headers={"Authorization": SECRET}))


# --- HTTPS through a forward proxy (CONNECT) ---------------------------------------------------

def through(proxy: ForwardProxy, resolver=None, allow: str = "127.0.0.7/32") -> Egress:
    return egress(allow=allow, resolver=resolver, proxy_url=proxy.url)


def test_https_through_the_proxy_tunnels_to_the_checked_address(trusted, serve, proxy):
    server = serve("127.0.0.7", trusted.server_context(dns=("api.test",)))
    out = through(proxy, resolves_to("127.0.0.7"))
    response = out.send("GET", server.url_for("api.test") + "/v1/private?q=1", headers={"Authorization": SECRET})
    assert response.status == 200 and response.egress_address == "proxy"
    assert json.loads(response.read())["target"] == "/v1/private?q=1"
    assert proxy.targets == [f"127.0.0.7:{server.port}"]  # an address, never a name to resolve again
    assert server.last().peer == "127.0.0.5"  # the proxy's source address
    assert server.last().header("Authorization") == SECRET
    assert server.last().header("Host") == f"api.test:{server.port}"
    assert server.server_names == ["api.test"]
    seen = proxy.tunnelled
    assert seen[:1] == b"\x16"  # a TLS handshake record: the proxy carried ciphertext only
    for plaintext in (SECRET.encode(), b"/v1/private", b"Host:"):
        assert plaintext not in seen


@pytest.mark.parametrize("certified", [{"dns": ("other.test",)}, {"ips": ("127.0.0.7",)}])
def test_tls_through_the_proxy_is_verified_against_the_url_host(trusted, serve, proxy, certified):
    server = serve("127.0.0.7", trusted.server_context(**certified))
    out = through(proxy, resolves_to("127.0.0.7"))
    refused_before_sending(server, lambda: out.send("GET", server.url_for("api.test") + "/",
                                                    headers={"Authorization": SECRET}))
    assert proxy.targets == [f"127.0.0.7:{server.port}"]
    assert SECRET.encode() not in proxy.tunnelled


@pytest.mark.parametrize("url, resolved", [
    ("https://10.0.0.1/", ()),
    ("https://169.254.169.254/latest/meta-data/", ()),
    ("http://169.254.169.254/latest/meta-data/", ()),
    ("https://metadata.test/computeMetadata/v1/", ("169.254.169.254",)),
    ("https://mixed.test/", ("127.0.0.7", "10.0.0.1")),
])
def test_the_address_policy_refuses_before_the_proxy_is_contacted(proxy, url, resolved):
    out = through(proxy, resolves_to(*resolved), allow="127.0.0.0/8")
    with pytest.raises(OutboundRefused):
        out.send("GET", url, headers={"Authorization": SECRET})
    assert proxy.targets == [] and proxy.tunnelled == b""


# --- IPv6 ---------------------------------------------------------------------------------------

def test_an_ipv6_upstream_is_reached_when_allowed(serve):
    server = serve("::1")
    response = egress(allow="::1/128").send("GET", server.url + "/six", headers={"Authorization": SECRET})
    assert response.status == 200 and response.egress_address == "::1"
    response.read()
    assert server.last().peer == "::1" and server.last().header("Authorization") == SECRET
    assert server.last().header("Host") == f"[::1]:{server.port}"


@pytest.mark.parametrize("allow", ["", "127.0.0.0/8", "::2/128"])
def test_an_ipv6_upstream_is_refused_without_an_allow_entry(serve, allow):
    server = serve("::1")
    with pytest.raises(OutboundRefused, match="loopback"):
        egress(allow=allow).send("GET", server.url + "/six")
    assert server.connections == 0


def test_ipv4_source_addresses_cannot_reach_an_ipv6_upstream(serve):
    server = serve("::1")
    out = egress(allow="::1/128", source_ips=("127.0.0.2", "127.0.0.3"))
    with pytest.raises(UpstreamUnreachable) as caught:
        out.send("GET", server.url + "/six")
    assert caught.value.message == "No egress source address matches the upstream's address family"
    assert server.connections == 0


def test_each_upstream_gets_a_source_address_of_its_own_family(serve):
    six, four = serve("::1"), serve("127.0.0.1")
    out = egress(allow="::1/128,127.0.0.0/8", source_ips=("127.0.0.2", "::1"))
    for _ in range(3):
        for server, source in ((six, "::1"), (four, "127.0.0.2")):
            response = out.send("GET", server.url + "/")
            assert response.status == 200 and response.egress_address == source
            response.read()
    assert {r.peer for r in six.received} == {"::1"} and len(six.received) == 3
    assert {r.peer for r in four.received} == {"127.0.0.2"} and len(four.received) == 3


@pytest.mark.parametrize("sources, reached", [(("127.0.0.2",), "127.0.0.1"), (("::1",), "::1")])
def test_a_dual_stack_name_is_reached_in_the_family_of_the_sources(serve, sources, reached):
    four = serve("127.0.0.1")
    six = serve("::1", port=four.port)  # the same port on both families, as a dual-stack host has
    out = egress(allow="::1/128,127.0.0.0/8", resolver=resolves_to("::1", "127.0.0.1"), source_ips=sources)
    out.send("GET", f"http://dual.test:{four.port}/").read()
    assert [len(four.received), len(six.received)] == ([1, 0] if reached == "127.0.0.1" else [0, 1])
