"""The auth modes whose stored credentials make a token: what the end user must give (checked
against the catalogue's `credentials` fields), and the token made from it, at capture and again
before it expires (the store asks auth, as for an OAuth 2 refresh).

| mode | the end user gives | the token |
|---|---|---|
| JWT | the catalogue's `credentials` fields (e.g. issuer id, key id, private key) | a JWT Authport signs |
| TWO_STEP | the catalogue's `credentials` fields | the provider's, from its `token_url` |
| SIGNATURE | `username`, `password` | a WSSE UsernameToken Authport signs |
| BILL | `username`, `password`, `organization_id`, `dev_key` | a Bill.com session id |
"""

from __future__ import annotations

import re

from common.errors import ApiError, field_error
from services.auth import signed_tokens, token_exchange
from services.auth.provider_calls import Outbound

MODES = ("JWT", "TWO_STEP", "SIGNATURE", "BILL")
FIXED_FIELDS = {"SIGNATURE": ("username", "password"), "BILL": ("username", "password", "organization_id", "dev_key")}
MAX_VALUE = 16384
HEADER_SAFE = re.compile(r'^[^"\\\r\n]*$')  # a WSSE username is quoted inside a header


def invalid(name: str, message: str) -> ApiError:
    return ApiError(message, code="invalid_body", status=400, errors=[field_error([name], message)])


def _declared(provider: dict, mode: str) -> dict[str, dict]:
    if mode in FIXED_FIELDS:
        return {name: (provider.get("credentials") or {}).get(name) or {} for name in FIXED_FIELDS[mode]}
    fields = provider.get("credentials")
    return {k: v if isinstance(v, dict) else {} for k, v in fields.items()} if isinstance(fields, dict) else {}


def _check_value(name: str, value, schema: dict) -> None:
    if isinstance(value, dict):  # e.g. Ghost's privateKey {id, secret}, as older SDKs send it
        for key, inner in value.items():
            if not isinstance(inner, str) or len(inner) > MAX_VALUE:
                raise invalid(name, f"{name}.{key} must be a string of at most {MAX_VALUE} characters")
        return
    if not isinstance(value, str) or len(value) > MAX_VALUE:
        raise invalid(name, f"{name} must be a string of at most {MAX_VALUE} characters")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and value and not re.search(pattern, value):
        raise invalid(name, f"{name} does not have the expected format")


def captured_fields(provider: dict, mode: str, body) -> dict:
    """The credential fields of a capture body, checked; raises a 400 naming the field at fault."""
    if not isinstance(body, dict):
        raise invalid("", "The body must be a JSON object")
    given = {k: v for k, v in body.items() if k not in ("type", "assertionOption")}
    if body.get("type") not in (None, mode):
        raise invalid("type", f"type must be {mode}")
    declared = _declared(provider, mode)
    for name in given:
        if declared and name not in declared:
            raise invalid(name, f"{name} is not a credential field of this provider")
    for name, schema in declared.items():
        if given.get(name) in (None, "") and not schema.get("optional"):
            raise invalid(name, f"{name} is required")
    for name, value in given.items():
        _check_value(name, value, declared.get(name) or {})
    if mode == "SIGNATURE" and not HEADER_SAFE.match(given["username"]):
        raise invalid("username", "username cannot contain quotes, backslashes or line breaks")
    return given


def make(outbound: Outbound, provider: dict, mode: str, fields: dict, connection_config: dict) -> dict:
    """The credentials to store for `fields`: the fields themselves and the token made from them."""
    if mode == "TWO_STEP":
        return token_exchange.two_step(outbound, provider, fields, connection_config)
    if mode == "BILL":
        return token_exchange.bill_login(outbound, provider, fields, connection_config)
    try:
        if mode == "JWT":
            token = signed_tokens.sign_jwt(provider, fields, connection_config)
        else:
            token = signed_tokens.wsse_token(provider, fields)
    except signed_tokens.TokenProblem as exc:
        if exc.field:
            raise invalid(exc.field, exc.message) from None
        raise ApiError(exc.message, code="invalid_auth_mode", status=400) from None
    return {"type": mode, **fields, **token}


def given_fields(credentials: dict, mode: str) -> dict:
    """What the end user gave, out of stored credentials (to make the next token from)."""
    made = {"type", "token", "expires_at", "raw", "refresh_token", "session_id", "user_id"}
    return {k: v for k, v in credentials.items() if k not in made}
