"""Build the upstream request of a proxied call: URL from the provider's base URL, credential
placed by auth mode and by the catalogue's `proxy.headers` / `proxy.query` templates.

The origin comes from the base URL alone (the caller only adds a path), so a template value
placed inside a base URL must be a plain name (letters, digits, `.`, `-`, `_`, `~`) and, when the
provider describes the field, match its `enum` or `pattern`. The headers and query parameters
that carry the credential are "protected": a caller can neither replace nor repeat them, and a
redirect to another origin drops them.

Templates fill `${accessToken}`, `${apiKey}`, `${credentials.…}` and `${connectionConfig.…}`, and
two helpers: `${now}` (the current time, ISO 8601 UTC) and `${base64(…)}`, whose argument is itself
a template (`Basic ${base64(${credentials.username}:${credentials.password})}`). A template with a
value missing, at any depth, gives nothing. OAUTH1 and TBA connections get a signer
(common/request_signing.py), AWS_SIGV4 ones an AWS Signature V4 signer (common/aws_sigv4.py),
that the caller applies to every attempt.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from common import aws_sigv4
from common import request_signing as signing
from common.errors import ApiError
from services.proxy.contract import ProxyCall

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
CREDENTIAL_NAMES = re.compile(r"\$\{(accessToken|apiKey|credentials\.[^}]+)\}")
PLAIN_VALUE = re.compile(r"^[A-Za-z0-9._~-]+$")
BEARER_ACCESS_TOKEN = {"OAUTH2", "APP", "MCP_OAUTH2", "MCP_OAUTH2_GENERIC", "CUSTOM"}
BEARER_TOKEN = {"OAUTH2_CC", "JWT", "SIGNATURE", "TWO_STEP"}
SIGNERS = {"OAUTH1": signing.oauth1_signer, "TBA": signing.tba_signer, "AWS_SIGV4": aws_sigv4.sigv4_signer}
BASE64_CALL = re.compile(r"base64\((.*)\)", re.S)
USER_AGENT = "Authport-Proxy"


@dataclass(frozen=True)
class Outbound:
    url: str
    headers: dict[str, str]
    protected_headers: frozenset[str]
    protected_query: frozenset[str]
    # (method, url, headers, body) -> headers to add, applied to every attempt (OAuth 1.0a, TBA)
    signer: Callable[..., dict[str, str]] | None = None


def unsupported(message: str, code: str = "unsupported_provider") -> ApiError:
    return ApiError(message, code=code, status=400)


def _lookup(connection: dict, name: str) -> str | None:
    credentials = connection.get("credentials") or {}
    if name == "accessToken":
        value = credentials.get("access_token") or credentials.get("token") or credentials.get("session_id")
    elif name == "apiKey":
        value = credentials.get("apiKey")
    elif name.startswith("connectionConfig."):
        value = _dig(connection.get("connection_config") or {}, name.split(".")[1:])
    elif name.startswith("credentials."):
        value = _dig(credentials, name.split(".")[1:])
    else:
        value = None
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _dig(data, path: list[str]):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _placeholders(template: str):
    """(start, end, expression) of each outermost `${…}`; nested ones stay inside the expression."""
    position = 0
    while (start := template.find("${", position)) != -1:
        depth, index = 1, start + 2
        while index < len(template) and depth:
            if template.startswith("${", index):
                depth, index = depth + 1, index + 2
                continue
            if template[index] == "}":
                depth -= 1
            index += 1
        if depth:
            return  # never closed: the rest is plain text
        if template[start + 2:index - 1].strip():
            yield start, index, template[start + 2:index - 1].strip()
        position = index


def _evaluate(expression: str, connection: dict) -> str | None:
    if expression == "now":
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    helper = BASE64_CALL.fullmatch(expression)
    if helper:
        inner = interpolate(helper.group(1), connection)
        return None if inner is None else base64.b64encode(inner.encode()).decode()
    return _lookup(connection, expression)


def interpolate(template: str, connection: dict, check=None) -> str | None:
    """`template` with every `${…}` filled in, or None when one has no value (or fails `check`)."""
    parts, last = [], 0
    for start, end, expression in _placeholders(template):
        value = _evaluate(expression, connection)
        if value is None or (check is not None and not check(expression, value)):
            return None
        parts += [template[last:start], value]
        last = end
    return "".join(parts) + template[last:]


def _field_check(provider_fields: dict):
    """A check of connection-config values placed inside a base URL."""

    def check(name: str, value: str) -> bool:
        if not PLAIN_VALUE.match(value):
            return False
        schema = provider_fields.get(name.removeprefix("connectionConfig."), {}) if name.startswith(
            "connectionConfig.") else {}
        if isinstance(schema.get("enum"), list) and value not in [str(v) for v in schema["enum"]]:
            return False
        pattern = schema.get("pattern")
        return not isinstance(pattern, str) or re.search(pattern, value) is not None

    return check


def base_url(connection: dict, provider_fields: dict, override: str | None) -> str:
    """The base URL: the override, or the first alternative of the template that resolves."""
    if override is not None:
        return override.rstrip("/")
    template = (connection.get("proxy") or {}).get("base_url")
    if not isinstance(template, str) or not template.strip():
        raise unsupported(f"The provider {connection.get('provider')} has no base URL for proxied calls")
    for alternative in (a.strip() for a in template.split("||")):
        whole = PLACEHOLDER.fullmatch(alternative)
        value = interpolate(alternative, connection, None if whole else _field_check(provider_fields))
        if value and re.match(r"^https?://[^/?#]+", value, re.I):
            return value.rstrip("/")
    raise unsupported("The connection's configuration does not give a usable base URL for this provider",
                      code="invalid_connection_config")


def auth_headers(mode: str, credentials: dict) -> dict[str, str]:
    """The credential header the auth mode itself implies (API_KEY relies on the catalogue's)."""
    if mode in BEARER_ACCESS_TOKEN and credentials.get("access_token"):
        return {"authorization": f"Bearer {credentials['access_token']}"}
    if mode in BEARER_TOKEN and credentials.get("token"):
        return {"authorization": f"Bearer {credentials['token']}"}
    if mode == "BILL" and credentials.get("session_id"):
        # Bill.com's Connect API: every call carries the login's session id and the developer key.
        return {"sessionid": str(credentials["session_id"]), "devkey": str(credentials.get("dev_key") or "")}
    if mode == "BASIC":
        pair = f"{credentials.get('username') or ''}:{credentials.get('password') or ''}"
        return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return {}


def provider_headers(connection: dict) -> tuple[dict[str, str], set[str]]:
    """The catalogue's `proxy.headers`, filled in, and the names of those carrying a credential."""
    out: dict[str, str] = {}
    protected: set[str] = set()
    for name, template in ((connection.get("proxy") or {}).get("headers") or {}).items():
        value = interpolate(str(template), connection)
        if value is None:
            continue
        out[name.lower()] = value
        if CREDENTIAL_NAMES.search(str(template)):
            protected.add(name.lower())
    return out, protected


def provider_query(connection: dict) -> dict[str, str]:
    out = {}
    for name, template in ((connection.get("proxy") or {}).get("query") or {}).items():
        value = interpolate(str(template), connection)
        if value is not None:
            out[str(name)] = value
    return out


def _query(call: ProxyCall, injected: dict[str, str]) -> str:
    """The caller's raw query, minus any parameter named like an injected one, plus the injected."""
    names = {n.lower() for n in injected}
    kept = [p for p in call.query.split("&") if p and p.split("=", 1)[0].lower() not in names]
    kept += [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in injected.items()]
    return "&".join(kept)


def build(connection: dict, call: ProxyCall, *, provider_fields: dict, override_enabled: bool) -> Outbound:
    """The upstream URL, headers and protected names for this call."""
    if call.base_url_override is not None and not override_enabled:
        raise ApiError("This base URL override is not allowed by server configuration.",
                       code="base_url_override_not_allowed", status=400)
    base = urlsplit(base_url(connection, provider_fields, call.base_url_override))
    mode = connection.get("auth_mode") or ""
    credential = auth_headers(mode, connection.get("credentials") or {})
    signer = SIGNERS[mode](connection) if mode in SIGNERS else None
    extra, protected = provider_headers(connection)
    protected |= set(credential) | ({"authorization"} if signer else set())
    if mode == "AWS_SIGV4":
        protected |= {"x-amz-date", "x-amz-content-sha256", "x-amz-security-token"}
    # The catalogue's headers come last: `authorization: Ghost ${accessToken}` replaces the mode's Bearer.
    headers = {"user-agent": USER_AGENT, **credential, **extra}
    for name, value in call.headers.items():
        if name.lower() in protected:
            raise ApiError(f"The header {name} is set from the connection's credentials and cannot be sent "
                           "by the caller", code="invalid_headers", status=400)
        headers[name.lower()] = value
    if call.decompress and "accept-encoding" not in headers:
        headers["accept-encoding"] = "gzip, deflate"
    injected_query = provider_query(connection)
    query = _query(call, injected_query)
    path = base.path.rstrip("/") + call.endpoint
    url = f"{base.scheme}://{base.netloc}{path}" + (f"?{query}" if query else "")
    return Outbound(url, headers, frozenset(protected), frozenset(n.lower() for n in injected_query), signer)
