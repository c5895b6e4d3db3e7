"""The one way Authport reaches the outside world (provider APIs, token endpoints, webhooks).

`Egress.send` resolves the destination once, refuses it unless every address it resolves to is
public or allowed by `OUTBOUND_ALLOW_CIDRS` (`common.addresses`), and connects to the address it
checked: the pool is keyed by that address, while the Host header and TLS SNI/verification keep
the host name, so no second DNS lookup can swap the destination. Connections leave from
`EGRESS_SOURCE_IPS` in turn, or through the forward proxy of `EGRESS_PROXY_URL`. Every request is
bounded by connect, read and total timeouts, and its answer by size caps (`common.egress_body`).
Redirects are followed only when asked, each hop checked again, and headers named as
credentials are dropped when a hop leaves the origin. No Flask here: auth and proxy share it.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from common import addresses
from common.egress_body import EgressResponse, ResponseTooLarge, UpstreamTimeout
from common.errors import ApiError

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
BAD_VALUE = re.compile(r"[\r\n\x00]")
Resolver = Callable[[str, int], list[str]]
__all__ = ["Egress", "EgressConfig", "EgressResponse", "Deadline", "OutboundRefused", "UpstreamUnreachable",
           "UpstreamTimeout", "ResponseTooLarge", "InvalidHeader", "check_headers"]


class OutboundRefused(ApiError):
    status = 400
    code = "outbound_url_not_allowed"


class UpstreamUnreachable(ApiError):
    status = 502
    code = "upstream_unreachable"


class InvalidHeader(ApiError):
    status = 400
    code = "invalid_headers"


@dataclass(frozen=True)
class EgressConfig:
    source_ips: tuple[str, ...] = ()
    proxy_url: str | None = None
    allow: tuple[addresses.Network, ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    total_timeout: float = 240.0
    max_response_bytes: int = 2 << 30
    max_decompressed_bytes: int = 1 << 30
    pool_maxsize: int = 256

    @classmethod
    def from_settings(cls, settings) -> EgressConfig:
        return cls(source_ips=settings.EGRESS_SOURCE_IPS, proxy_url=settings.EGRESS_PROXY_URL,
                   allow=settings.OUTBOUND_ALLOW_CIDRS, connect_timeout=settings.PROXY_CONNECT_TIMEOUT,
                   read_timeout=settings.PROXY_READ_TIMEOUT, total_timeout=settings.PROXY_TOTAL_TIMEOUT,
                   max_response_bytes=settings.PROXY_MAX_RESPONSE_BYTES,
                   max_decompressed_bytes=settings.PROXY_MAX_DECOMPRESSED_BYTES,
                   pool_maxsize=settings.EGRESS_POOL_MAXSIZE)


class Deadline:
    """The end of a whole outbound call, retries and body included."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def timeout(self, connect: float, read: float) -> urllib3.Timeout:
        left = self.remaining()
        if left <= 0:
            raise UpstreamTimeout(f"The upstream API did not answer within {self.seconds:g} s")
        return urllib3.Timeout(connect=min(connect, left), read=min(read, left))


@dataclass(frozen=True)
class Target:
    """A checked destination: where to connect (`address`) and what to call it (`host`)."""

    scheme: str
    host: str
    port: int
    address: str
    request_target: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if DEFAULT_PORTS[self.scheme] == self.port else f"{name}:{self.port}"


def check_headers(headers: Mapping[str, str]) -> None:
    """Refuse header names that are not HTTP tokens and values carrying CR, LF or NUL."""
    for name, value in headers.items():
        if not TOKEN.match(name):
            raise InvalidHeader(f"Header name {name!r} is not a valid HTTP header name")
        if BAD_VALUE.search(str(value)):
            raise InvalidHeader(f"Header {name} contains a line break or NUL character")


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def without_query_names(url: str, names: Iterable[str]) -> str:
    """`url` with the query parameters in `names` (case-insensitive) removed."""
    drop = {n.lower() for n in names}
    parts = urlsplit(url)
    if not drop or not parts.query:
        return url
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in drop]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) of an absolute http(s) URL, refusing ambiguous ones."""
    if "\\" in url or any(ord(c) < 0x21 for c in url):
        raise OutboundRefused("The outbound URL contains a backslash, space or control character")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused("Only http and https URLs can be called")
    if "@" in parts.netloc:
        raise OutboundRefused("The outbound URL must not carry user information (user@host)")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise OutboundRefused("The outbound URL has an invalid port") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused("The outbound URL has no host")
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        raise OutboundRefused("The outbound URL's host is not a valid name") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, target


class Egress:
    def __init__(self, config: EgressConfig, resolver: Resolver | None = None):
        self.config = config
        self.resolver = resolver or addresses.system_resolver
        self._sources = itertools.cycle(config.source_ips) if config.source_ips else None
        self._sources_lock = threading.Lock()
        options = {"num_pools": 256, "maxsize": config.pool_maxsize, "block": False, "retries": False}
        self.proxied = config.proxy_url is not None
        self.pools = urllib3.ProxyManager(config.proxy_url, **options) if self.proxied else urllib3.PoolManager(
            **options)

    def resolve(self, url: str) -> Target:
        """Check `url` against the policy and pick the address to connect to (one lookup only)."""
        scheme, host, port, request_target = _split(url)
        found = addresses.literal(host)
        if found is not None:
            candidates = [found]
        else:
            try:
                candidates = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)]
            except (OSError, UnicodeError, ValueError):
                raise UpstreamUnreachable(f"The host {host} cannot be resolved") from None
        if not candidates:
            raise UpstreamUnreachable(f"The host {host} cannot be resolved")
        for address in candidates:
            reason = addresses.classify(address)
            if reason and not addresses.allowed(address, self.config.allow):
                raise OutboundRefused(f"{host} resolves to a {reason} address")
        if found is not None:
            host = str(found)
        return Target(scheme, host, port, str(self._preferred(candidates)), request_target)

    def _preferred(self, candidates: list) -> addresses.IPAddress:
        families = {ipaddress.ip_address(s).version for s in self.config.source_ips}
        usable = [a for a in candidates if not families or self.proxied or a.version in families]
        if not usable:
            raise UpstreamUnreachable("No egress source address matches the upstream's address family")
        return usable[0]

    def _source(self, address: str) -> str | None:
        if self._sources is None:
            return None
        version = ipaddress.ip_address(address).version
        with self._sources_lock:
            for _ in range(len(self.config.source_ips)):
                source = next(self._sources)
                if self.proxied or ipaddress.ip_address(source).version == version:
                    return source
        return None

    def send(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, body=None,
             deadline: Deadline | None = None, max_redirects: int = 0,
             protected_headers: Iterable[str] = (), protected_query: Iterable[str] = ()) -> EgressResponse:
        """One outbound request (following at most `max_redirects` redirects); the answer unread."""
        deadline = deadline or Deadline(self.config.total_timeout)
        headers = dict(headers or {})
        check_headers(headers)
        protected = {h.lower() for h in protected_headers}
        for hop in itertools.count():
            target = self.resolve(url)
            response = self._attempt(method, target, headers, body, deadline)
            location = response.headers.get("Location")
            if hop >= max_redirects or response.status not in REDIRECTS or not location:
                return response
            method, body, keep = _redirected(response.status, method, body)
            if not keep:
                return response
            response.discard()
            next_url = urljoin(url, location)
            if origin_of(next_url) != target.origin:
                headers = {k: v for k, v in headers.items() if k.lower() not in protected}
                next_url = without_query_names(next_url, protected_query)
            if body is None:
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
            url = next_url
        raise AssertionError("unreachable")

    def _attempt(self, method: str, target: Target, headers: dict, body, deadline: Deadline) -> EgressResponse:
        source = self._source(target.address)
        pool_kwargs: dict = {"source_address": (source, 0)} if source else {}
        if target.scheme == "https":
            pool_kwargs.update(server_hostname=target.host, assert_hostname=target.host)
        pool = self.pools.connection_from_host(target.address, target.port, target.scheme, pool_kwargs=pool_kwargs)
        request_url = target.request_target
        if self.proxied and target.scheme == "http":
            host = f"[{target.address}]" if ":" in target.address else target.address
            request_url = f"http://{host}:{target.port}{target.request_target}"
        try:
            raw = pool.urlopen(method, request_url, body=body, headers={**headers, "Host": target.host_header},
                               retries=False, redirect=False, assert_same_host=False, preload_content=False,
                               decode_content=False,
                               timeout=deadline.timeout(self.config.connect_timeout, self.config.read_timeout))
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            if isinstance(exc, NewConnectionError):
                raise UpstreamUnreachable(f"Cannot connect to {target.host}:{target.port}") from None
            raise UpstreamTimeout(f"The upstream API did not answer in time ({type(exc).__name__})") from None
        except (SSLError, ProxyError, HTTPError, OSError) as exc:
            raise UpstreamUnreachable(f"The request to {target.host} failed ({type(exc).__name__})") from None
        egress = "proxy" if self.proxied else (source or _local_address(raw))
        return EgressResponse(raw, deadline, self.config, egress, self.config.read_timeout)


def _redirected(status: int, method: str, body) -> tuple[str, object, bool]:
    """(method, body, follow?) for the next hop, as browsers and curl do."""
    if status == 303 or (status in (301, 302) and method == "POST"):
        return ("GET" if method != "HEAD" else "HEAD"), None, True
    replayable = body is None or isinstance(body, (bytes, bytearray, str))
    return method, body, replayable


def _local_address(raw) -> str | None:
    try:
        return raw.connection.sock.getsockname()[0]
    except (AttributeError, OSError):
        return None
