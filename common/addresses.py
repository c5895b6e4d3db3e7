"""Which network addresses an outbound request may reach: the SSRF policy of the egress layer.

Every address a host name resolves to is classified; anything that is not a public unicast
address (loopback, private, link-local and the cloud metadata address, CGNAT, unique-local,
unspecified, multicast, reserved) is refused unless an operator listed it in
`OUTBOUND_ALLOW_CIDRS`. IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64,
Teredo) are judged by the IPv4 address they carry, so `[::ffff:127.0.0.1]` is loopback too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = ipaddress.ip_address("169.254.169.254")
CGNAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
TEREDO = ipaddress.ip_network("2001::/32")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Host names made only of numbers (decimal, octal or hex parts): C's inet_aton reads "127.1",
# "2130706433" and "0x7f.1" as 127.0.0.1, and so would the resolver.
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (or single addresses); raises ValueError naming the bad part."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/8)") from None
    return tuple(networks)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo), if any."""
    if address.version == 4:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64[0]:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> str | None:
    """Why `address` is not a public destination ("loopback", "private", …), or None if it is."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = classify(inner)
        return f"IPv6-embedded {reason}" if reason else None
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address == METADATA, "cloud metadata"),
        (address.is_link_local, "link-local"),
        (address.version == 4 and address in CGNAT, "carrier-grade NAT"),
        (address.version == 6 and address in UNIQUE_LOCAL, "unique-local"),
        (address.version == 6 and address in NAT64[1], "local NAT64"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.version == 6 and address.is_site_local, "site-local"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-public"),
    )
    return next((reason for refused, reason in checks if refused), None)


def allowed(address: IPAddress, allow: Iterable[Network]) -> bool:
    """Whether an operator listed the address (or the IPv4 address it carries)."""
    candidates = [address]
    inner = embedded_ipv4(address)
    if inner is not None:
        candidates.append(inner)
    return any(c.version == net.version and c in net for c in candidates for net in allow)


def literal(host: str) -> IPAddress | None:
    """The address a host name spells directly, in any form the resolver would accept; else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text.rstrip(".")))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host:port (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]
