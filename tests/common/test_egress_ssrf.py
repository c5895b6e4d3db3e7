"""The SSRF policy of the egress layer: every spelling of an internal address is refused before a
connection is opened (sentinel listeners on loopback record zero connections), and what is
allowed is reached at the address that was checked."""

from __future__ import annotations

import ipaddress

import pytest

from common import addresses
from common.egress import Egress, EgressConfig, OutboundRefused
from tests.support.upstream import Upstream

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class GuardedEgress(Egress):
    """The real egress layer, counting connection attempts and refusing (as a safety net for the
    test itself) to contact anything off loopback should the policy under test let it through."""

    attempts = 0

    def _attempt(self, method, target, headers, body, deadline):
        type(self).attempts += 1
        assert ipaddress.ip_address(target.address) in LOOPBACK or target.address == "::1", target
        return super()._attempt(method, target, headers, body, deadline)


@pytest.fixture
def sentinel():
    with Upstream("127.0.0.1") as server:
        yield server


def egress(allow: str = "", resolver=None, **config) -> GuardedEgress:
    GuardedEgress.attempts = 0
    return GuardedEgress(EgressConfig(allow=addresses.parse_networks(allow), **config), resolver=resolver)


def fixed(mapping: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        return mapping[host]

    return resolve


LOOPBACK_SPELLINGS = ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.0.0.1.",
                      "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]",
                      "[2002:7f00:1::]", "localhost", "LOCALHOST", "0.0.0.0", "0"]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_in_any_spelling_is_refused_before_connecting(sentinel, host):
    out = egress()
    with pytest.raises(OutboundRefused):
        out.send("GET", f"http://{host}:{sentinel.port}/", headers={"Authorization": "Bearer secret"})
    assert GuardedEgress.attempts == 0
    assert sentinel.connections == 0


INTERNAL = {
    "ten.test": ["10.1.2.3"], "one-seven-two.test": ["172.16.5.4"], "one-nine-two.test": ["192.168.1.1"],
    "metadata.test": ["169.254.169.254"], "link.test": ["169.254.10.10"], "cgnat.test": ["100.64.0.1"],
    "ula.test": ["fd00::1"], "ula-fc.test": ["fc00::5"], "v6-link.test": ["fe80::1"],
    "mapped-private.test": ["::ffff:10.0.0.1"], "nat64-metadata.test": ["64:ff9b::a9fe:a9fe"],
    "multicast.test": ["224.0.0.1"], "broadcast.test": ["255.255.255.255"], "reserved.test": ["240.0.0.1"],
    "mixed.test": ["93.184.215.14", "10.0.0.1"],
}


@pytest.mark.parametrize("host", sorted(INTERNAL))
def test_internal_addresses_behind_a_name_are_refused(host):
    out = egress(resolver=fixed(INTERNAL))
    with pytest.raises(OutboundRefused):
        out.send("GET", f"http://{host}/latest/meta-data/", headers={"Authorization": "Bearer secret"})
    assert GuardedEgress.attempts == 0
    assert not out.pools.pools.keys()


@pytest.mark.parametrize("literal", ["10.0.0.1", "172.31.255.1", "192.168.0.10", "169.254.169.254",
                                     "100.100.100.200", "[fd00::1]", "[fe80::1]", "[::ffff:169.254.169.254]"])
def test_internal_literals_are_refused(literal):
    out = egress()
    with pytest.raises(OutboundRefused):
        out.send("GET", f"http://{literal}/")
    assert GuardedEgress.attempts == 0


def test_allowed_cidr_is_reached_at_the_checked_address_with_the_hostname_kept(sentinel):
    out = egress(allow="127.0.0.1/32", resolver=fixed({"api.example.test": ["127.0.0.1"]}))
    response = out.send("GET", f"http://api.example.test:{sentinel.port}/v1/items?x=1")
    assert response.status == 200
    response.discard()
    got = sentinel.last()
    assert got.target == "/v1/items?x=1"
    assert got.header("Host") == f"api.example.test:{sentinel.port}"


def test_an_answer_that_changes_between_lookups_is_looked_up_once():
    with Upstream("127.0.0.2") as upstream, Upstream("127.0.0.3", port=upstream.port) as sentinel:
        answers = [["127.0.0.2"], ["127.0.0.3"]]
        calls = []

        def rebinding(host: str, port: int) -> list[str]:
            calls.append(host)
            return answers[min(len(calls), 2) - 1]

        out = egress(allow="127.0.0.2/32", resolver=rebinding)
        response = out.send("GET", f"http://rebind.test:{upstream.port}/")
        assert response.status == 200
        response.read()
        assert calls == ["rebind.test"]
        assert len(upstream.received) == 1
        with pytest.raises(OutboundRefused):  # the next lookup answers the internal address: refused
            out.send("GET", f"http://rebind.test:{upstream.port}/")
        assert sentinel.connections == 0


def test_loopback_is_refused_without_the_allow_list_and_reached_with_it(sentinel):
    with pytest.raises(OutboundRefused):
        egress().send("GET", sentinel.url + "/")
    assert sentinel.connections == 0
    response = egress(allow="127.0.0.0/8").send("GET", sentinel.url + "/")
    assert response.status == 200
    response.discard()
    assert sentinel.connections == 1


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://api.test\\@127.0.0.1/",
                                 "http:///nohost", "http://127.0.0.1:99999/", "http://a b/"])
def test_ambiguous_urls_are_refused(url, sentinel):
    with pytest.raises(OutboundRefused):
        egress(allow="127.0.0.0/8").send("GET", url)
    assert GuardedEgress.attempts == 0


@pytest.mark.parametrize("address,reason", [
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("127.0.0.1", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "cloud metadata"), ("100.64.0.1", "carrier-grade NAT"), ("fd12::1", "unique-local"),
    ("::ffff:10.0.0.1", "IPv6-embedded private"), ("2002:a9fe:a9fe::", "IPv6-embedded cloud metadata"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("192.0.2.1", "private"),
])
def test_classify(address, reason):
    assert addresses.classify(ipaddress.ip_address(address)) == reason
