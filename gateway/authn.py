"""Who is calling: the caller's credential, and which credentials each public route accepts.

Most routes take the environment's secret key in `Authorization`. A connect session token
(`nango_connect_session_` + 64 hex) works on the few routes a frontend uses; the flow routes a
browser opens (`/oauth/connect/…`, `/api-auth/…`, …) carry it, or a public key, in the query.
"""

from __future__ import annotations

import base64
import binascii
import re

from common.errors import ApiError

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
SESSION_PREFIX = "nango_connect_session_"
SESSION_TOKEN = re.compile(r"^nango_connect_session_[a-f0-9]{64}$")
QUERY_AUTH_PREFIXES = ("/oauth/connect/", "/oauth2/auth/", "/api-auth/", "/auth/")
OPEN_PATHS = ("/oauth/callback",)
PROVIDER_WEBHOOKS = "/webhook/"  # POST /webhook/:environmentUuid/:providerConfigKey
CONNECT_PAGE = ("/connect", "/connect/")  # the connect_link page; it reads the token from its own URL
LOGOS = "/images/template-logos/"  # provider logos, loaded by <img> tags that carry no key
OPEN_PREFIXES = (LOGOS, "/connect/assets/")  # and the connect page's script and style sheet

# What a route accepts: "key" (secret key), "session" (connect session token only),
# "session_or_key", "query" (session token or public key in the query) or "open" (nothing).
KEY, SESSION, SESSION_OR_KEY, QUERY, OPEN = "key", "session", "session_or_key", "query", "open"


def auth_error(code: str, message: str) -> ApiError:
    return ApiError(f"Authentication failed. {message}", code=code, status=401, payload={})


def policy(method: str, path: str) -> str:
    if method == "POST" and path.startswith(PROVIDER_WEBHOOKS):
        return OPEN  # a provider's webhook carries its own signature, checked by the store
    if path in OPEN_PATHS or (method in ("GET", "HEAD") and (path in CONNECT_PAGE or path.startswith(OPEN_PREFIXES))):
        return OPEN
    if path.startswith(QUERY_AUTH_PREFIXES):
        return QUERY
    if path == "/connect/session":
        return SESSION
    if method == "GET" and (path == "/integrations" or path == "/providers" or path.startswith("/providers/")):
        return SESSION_OR_KEY
    return KEY


def _header_value(header: str | None) -> str:
    """What follows `Bearer `, or the user name of legacy `Basic base64(<key>:)`."""
    if header is None or not header.strip():
        raise auth_error("missing_auth_header", "The request is missing the Authorization header.")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            pass
    raise auth_error("malformed_auth_header", "The provided authorization header is malformed.")


def session_token(value: str) -> str:
    if not SESSION_TOKEN.match(value):
        raise auth_error("invalid_connect_session_token_format", "The provided connect session token is malformed.")
    return value


def secret_key(value: str) -> str:
    if not UUID4.match(value):
        raise auth_error("invalid_secret_key_format", "The provided secret key is not a UUID v4.")
    return value


def key_from_header(header: str | None) -> str:
    """The secret key in `Authorization: Bearer <key>` or legacy `Basic base64(<key>:)`."""
    return secret_key(_header_value(header))


def credential_from_header(header: str | None, accepted: str) -> tuple[str, str]:
    """(credential, kind) from the Authorization header, for a route of policy `accepted`."""
    value = _header_value(header)
    if accepted == SESSION or (accepted == SESSION_OR_KEY and value.startswith(SESSION_PREFIX)):
        return session_token(value), "connect_session"
    return secret_key(value), "secret"


def credential_from_query(args) -> tuple[str, str]:
    """(credential, kind) from `connect_session_token=` (preferred) or `public_key=`."""
    token = args.get("connect_session_token")
    if token is not None:
        return session_token(token), "connect_session"
    public = args.get("public_key")
    if not public:
        raise auth_error("missing_public_key", "The request needs a connect session token or a public key.")
    if not UUID4.match(public):
        raise auth_error("invalid_public_key", "The provided public key is not a UUID v4.")
    return public, "public"
