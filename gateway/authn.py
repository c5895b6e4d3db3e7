"""Who is calling: the caller's key, taken from the Authorization header and resolved by the store."""

from __future__ import annotations

import base64
import binascii
import re

from common.errors import ApiError

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


def auth_error(code: str, message: str) -> ApiError:
    return ApiError(f"Authentication failed. {message}", code=code, status=401, payload={})


def key_from_header(header: str | None) -> str:
    """The secret key in `Authorization: Bearer <key>` or legacy `Basic base64(<key>:)`."""
    if header is None or not header.strip():
        raise auth_error("missing_auth_header", "The request is missing the Authorization header.")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        key = value
    elif scheme.lower() == "basic" and value:
        try:
            user, _, _password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise auth_error("malformed_auth_header", "The provided authorization header is malformed.") from None
        key = user
    else:
        raise auth_error("malformed_auth_header", "The provided authorization header is malformed.")
    if not UUID4.match(key):
        raise auth_error("invalid_secret_key_format", "The provided secret key is not a UUID v4.")
    return key
