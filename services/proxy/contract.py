"""The `/proxy/*` request as Nango's SDK sends it, read and checked (NANGO_API.md §1.6).

Only headers prefixed `Nango-Proxy-` are forwarded (prefix removed), plus the body's
`Content-Type`; everything else the caller sent stays here. The endpoint is taken exactly as
sent (percent-encoding kept) and refused when it could change the origin or climb out of the
provider's base path: absolute URLs, `//host`, `@host`, backslashes, dot segments in any
encoding, control characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from common.errors import ApiError

PREFIX = "nango-proxy-"
# Never taken from the caller, even prefixed: they frame the connection or name the origin.
NOT_FORWARDABLE = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                   "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length", "expect"}
BOOLEAN = {"true": True, "false": False}
RETRY_ON = re.compile(r"^\d+(,\d+)*$")
SCHEME_AT_START = re.compile(r"^/*[A-Za-z][A-Za-z0-9+.-]*:/")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ProxyCall:
    connection_id: str
    provider_config_key: str
    endpoint: str  # the raw path after /proxy, starting with "/"
    query: str  # the raw query string, without "?"
    retries: int = 0
    retry_on: frozenset[int] = frozenset()
    base_url_override: str | None = None
    decompress: bool = False
    follow_redirects: bool = False
    forward_headers_on_redirect: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def header_issue(name: str, message: str, code: str = "invalid_type") -> dict:
    return {"code": code, "message": message, "path": [name]}


def invalid_headers(issues: list[dict]) -> ApiError:
    return ApiError(code="invalid_headers", status=400, message=None, errors=issues)


def invalid_path(message: str) -> ApiError:
    return ApiError(message, code="invalid_proxy_path", status=400)


def check_endpoint(endpoint: str) -> str:
    """The endpoint if it can only name a path under the provider's base URL; raises otherwise."""
    if endpoint == "":
        return "/"
    if not endpoint.startswith("/") or endpoint.startswith("//"):
        raise invalid_path("The endpoint must be a path such as /user/repos, not a URL or //host")
    if SCHEME_AT_START.match(endpoint):
        raise invalid_path("The endpoint must be a path, not an absolute URL")
    if "@" in endpoint.split("/", 2)[1]:
        raise invalid_path("The endpoint must not start with user@host")
    if " " in endpoint:
        raise invalid_path("The endpoint must be percent-encoded (no spaces)")
    once = unquote(endpoint)
    for form in (endpoint, once, unquote(once)):
        if "\\" in form or CONTROL.search(form):
            raise invalid_path("The endpoint must not contain backslashes or control characters, encoded or not")
        if any(segment in (".", "..") for segment in form.split("/")):
            raise invalid_path("The endpoint must not contain . or .. segments, encoded or not")
    return endpoint


def _flag(headers: Mapping[str, str], name: str, issues: list[dict]) -> bool | None:
    raw = headers.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in BOOLEAN:
        issues.append(header_issue(name.lower(), "Invalid input: expected \"true\" or \"false\"", "invalid_value"))
        return None
    return BOOLEAN[raw.lower()]


def _retries(headers: Mapping[str, str], max_retries: int, issues: list[dict]) -> int:
    raw = (headers.get("Retries") or "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        issues.append(header_issue("retries", "Invalid input: expected a number"))
        return 0
    return min(int(raw), max_retries)


def _retry_on(headers: Mapping[str, str], issues: list[dict]) -> frozenset[int]:
    raw = (headers.get("Retry-On") or "").replace(" ", "")
    if not raw:
        return frozenset()
    if not RETRY_ON.match(raw):
        issues.append(header_issue("retry-on", "Invalid input: expected status codes such as 429,503",
                                   "invalid_format"))
        return frozenset()
    return frozenset(int(code) for code in raw.split(","))


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's `Nango-Proxy-*` headers without the prefix, and the body's Content-Type."""
    out: dict[str, str] = {}
    if headers.get("Content-Type"):
        out["Content-Type"] = headers["Content-Type"]
    for name, value in headers.items():
        if name.lower().startswith(PREFIX) and len(name) > len(PREFIX):
            bare = name[len(PREFIX):]
            if bare.lower() in NOT_FORWARDABLE:
                continue
            for existing in [k for k in out if k.lower() == bare.lower()]:
                del out[existing]
            out[bare] = value
    return out


def parse(headers: Mapping[str, str], endpoint: str, query: str, *, max_retries: int) -> ProxyCall:
    """Read the proxy headers; raises 400 invalid_headers (Nango's shape) or invalid_proxy_path."""
    issues: list[dict] = []
    for name in ("Provider-Config-Key", "Connection-Id"):
        if not headers.get(name):
            issues.append(header_issue(name.lower(), "Invalid input: expected string, received undefined"))
    override = (headers.get("Base-Url-Override") or "").strip() or None
    if override is not None and not re.match(r"^https?://", override, re.I):
        issues.append(header_issue("base-url-override", "Invalid URL", "invalid_format"))
    retries = _retries(headers, max_retries, issues)
    retry_on = _retry_on(headers, issues)
    decompress = _flag(headers, "Decompress", issues)
    forward_on_redirect = _flag(headers, "Forward-Headers-On-Redirect", issues)
    for name in ("Nango-Is-Sync", "Nango-Is-Dry-Run", "Nango-Is-Script"):
        _flag(headers, name, issues)
    if issues:
        raise invalid_headers(issues)
    return ProxyCall(
        connection_id=headers["Connection-Id"], provider_config_key=headers["Provider-Config-Key"],
        endpoint=check_endpoint(endpoint), query=query, retries=retries, retry_on=retry_on,
        base_url_override=override, decompress=bool(decompress), follow_redirects=forward_on_redirect is not None,
        forward_headers_on_redirect=bool(forward_on_redirect), headers=forwarded_headers(headers),
    )
