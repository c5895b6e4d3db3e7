"""The egress layer against real upstreams on loopback: source addresses, forward proxy, timeouts,
size caps, header injection and redirects."""

from __future__ import annotations

import json
import time

import pytest

from common import addresses
from common.egress import (
    Deadline,
    Egress,
    EgressConfig,
    InvalidHeader,
    OutboundRefused,
    ResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from tests.support.forward_proxy import ForwardProxy
from tests.support.system import free_port
from tests.support.upstream import Upstream


def egress(allow: str = "127.0.0.0/8", **config) -> Egress:
    return Egress(EgressConfig(allow=addresses.parse_networks(allow), **config))


@pytest.fixture
def upstream():
    with Upstream("127.0.0.1") as server:
        yield server


def test_connections_leave_from_the_source_addresses_in_turn(upstream):
    out = egress(source_ips=("127.0.0.2", "127.0.0.3"))
    for _ in range(6):
        response = out.send("GET", upstream.url + "/")
        assert response.egress_address in ("127.0.0.2", "127.0.0.3")
        response.read()
    assert {r.peer for r in upstream.received} == {"127.0.0.2", "127.0.0.3"}


def test_without_source_addresses_the_local_address_is_reported(upstream):
    response = egress().send("GET", upstream.url + "/")
    response.read()
    assert response.egress_address == "127.0.0.1"


def test_a_forward_proxy_carries_the_request_to_the_checked_address(upstream):
    proxy = ForwardProxy(host="127.0.0.4", source="127.0.0.5")
    try:
        resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
        out = Egress(EgressConfig(proxy_url=proxy.url, allow=addresses.parse_networks("127.0.0.1/32")),
                     resolver=resolver)
        response = out.send("GET", f"http://api.test:{upstream.port}/thing?a=1")
        assert response.status == 200 and response.egress_address == "proxy"
        response.read()
        assert proxy.targets == [f"http://127.0.0.1:{upstream.port}/thing?a=1"]
        assert upstream.last().peer == "127.0.0.5"
        assert upstream.last().header("Host") == f"api.test:{upstream.port}"
        with pytest.raises(OutboundRefused):  # the policy still applies before the proxy is asked
            Egress(EgressConfig(proxy_url=proxy.url)).send("GET", upstream.url + "/")
        assert len(proxy.targets) == 1
    finally:
        proxy.stop()


def test_a_closed_port_is_unreachable():
    with pytest.raises(UpstreamUnreachable):
        egress().send("GET", f"http://127.0.0.1:{free_port()}/")


def test_a_slow_answer_times_out(upstream):
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        egress(read_timeout=0.5).send("GET", upstream.url + "/slow?seconds=3")
    assert time.monotonic() - started < 2


def test_the_total_deadline_ends_a_dripping_body(upstream):
    out = egress(read_timeout=5, total_timeout=2.5)
    response = out.send("GET", upstream.url + "/drip", deadline=Deadline(2.5))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        for _ in response.stream():
            pass
    assert time.monotonic() - started < 4.5


def test_declared_and_streamed_sizes_are_capped(upstream):
    out = egress(max_response_bytes=1000)
    response = out.send("GET", upstream.url + "/bytes?n=2000")
    with pytest.raises(ResponseTooLarge):
        response.check_declared_size()
    endless = out.send("GET", upstream.url + "/endless")
    received = 0
    with pytest.raises(ResponseTooLarge):
        for chunk in endless.stream():
            received += len(chunk)
    assert received <= 1000


def test_a_gzip_bomb_is_stopped_at_the_decompressed_cap(upstream):
    out = egress(max_decompressed_bytes=1 << 20)
    response = out.send("GET", upstream.url + "/gzip-bomb?mib=64", headers={"Accept-Encoding": "gzip"})
    inflated = 0
    with pytest.raises(ResponseTooLarge):
        for chunk in response.stream(decompress=True):
            inflated += len(chunk)
    assert inflated <= 1 << 20
    raw = out.send("GET", upstream.url + "/gzip-bomb?mib=1")
    assert len(raw.read(decompress=False)) < 1 << 20  # passed on compressed when not asked to inflate


def test_gzip_is_inflated_when_asked(upstream):
    out = egress()
    body = out.send("GET", upstream.url + "/gzip-bomb?mib=1").read(decompress=True)
    assert body == b"\0" * (1 << 20)


@pytest.mark.parametrize("headers", [{"X-A": "v\r\nX-Injected: 1"}, {"X-A": "v\nx"}, {"Bad Name": "v"},
                                     {"X-A\r\nX-B": "v"}, {"X-A": "nul\x00"}])
def test_line_breaks_in_headers_are_refused_before_connecting(upstream, headers):
    with pytest.raises(InvalidHeader):
        egress().send("GET", upstream.url + "/", headers=headers)
    assert upstream.connections == 0


def test_redirects_are_not_followed_unless_asked(upstream):
    with Upstream("127.0.0.3") as sentinel:
        target = f"{upstream.url}/redirect?to={sentinel.url}/"
        response = egress().send("GET", target)
        assert response.status == 302
        response.discard()
        with pytest.raises(OutboundRefused):  # followed, the next hop is checked again
            egress(allow="127.0.0.1/32").send("GET", target, max_redirects=3)
        assert sentinel.connections == 0


def test_the_credential_is_dropped_when_a_redirect_leaves_the_origin(upstream):
    with Upstream("127.0.0.3") as other:
        out = egress()
        headers = {"Authorization": "Bearer secret", "X-Keep": "1"}
        away = f"{upstream.url}/redirect?to={other.url}/landing%3Fapi_key%3Dsecret%26page%3D2"
        response = out.send("GET", away, headers=headers, max_redirects=2, protected_headers={"authorization"},
                            protected_query={"api_key"})
        landed = json.loads(response.read())
        assert landed["target"] == "/landing?page=2"
        assert other.last().header("Authorization") is None
        assert other.last().header("X-Keep") == "1"
        same = out.send("GET", f"{upstream.url}/redirect?to=/echo", headers=headers, max_redirects=2,
                        protected_headers={"authorization"})
        same.read()
        assert upstream.last().header("Authorization") == "Bearer secret"


def test_a_303_turns_a_post_into_a_get_without_body(upstream):
    response = egress().send("POST", f"{upstream.url}/redirect?to=/after&status=303", body=b'{"a":1}',
                             headers={"Content-Type": "application/json"}, max_redirects=1)
    response.read()
    assert upstream.last().method == "GET" and upstream.last().body == b""
    assert upstream.last().header("Content-Type") is None
