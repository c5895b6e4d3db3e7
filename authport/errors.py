"""The errors of Authport's API as exceptions: one class per error code, under one class per status.

    try:
        api.get_connection("github", "conn-1")
    except errors.UnknownConnection:   # code unknown_connection (a NotFound, an AuthportError)
        ...
    except errors.RateLimited as exc:  # any 429, after the client's own retries
        print(exc.retry_after)

`for_code(code)` is the class of any code, also of one this client does not list (made on first use).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class AuthportError(Exception):
    """An error answer: `status`, `code`, `message`, the whole `payload` and the answer's `headers`."""

    code = ""

    def __init__(self, status: int, code: str, message: str, payload: Any = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.payload, self.headers = payload, dict(headers or {})

    @property
    def retry_after(self) -> float | None:
        try:
            return float(self.headers.get("Retry-After") or self.headers.get("retry-after"))
        except (TypeError, ValueError):
            return None


class BadRequest(AuthportError): ...
class Unauthorized(AuthportError): ...
class Forbidden(AuthportError): ...
class NotFound(AuthportError): ...
class Conflict(AuthportError): ...
class Gone(AuthportError): ...
class PayloadTooLarge(AuthportError): ...
class FailedDependency(AuthportError): ...
class RateLimited(AuthportError): ...
class ServerError(AuthportError): ...
class ServiceUnavailable(ServerError): ...


BY_STATUS: dict[int, type[AuthportError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                             409: Conflict, 410: Gone, 413: PayloadTooLarge, 424: FailedDependency,
                                             429: RateLimited, 503: ServiceUnavailable}

# Authport's own codes, with the status each is answered with (see README and the OpenAPI document).
KNOWN: dict[str, int] = {
    "invalid_body": 400, "invalid_json": 400, "invalid_query_params": 400, "invalid_uri_params": 400,
    "invalid_headers": 400, "invalid_credentials": 400, "invalid_connection_config": 400,
    "invalid_auth_mode": 400, "invalid_request": 400, "invalid_proxy_path": 400, "invalid_content_type": 415,
    "invalid_key_name": 400, "invalid_plan": 400, "invalid_account_name": 400, "missing_hmac": 400,
    "invalid_hmac": 400, "missing_client_credentials": 400, "missing_client_id": 400,
    "missing_client_secret": 400, "connection_test_failed": 400, "base_url_override_not_allowed": 400,
    "invalid_connect_session_token_format": 401, "unknown_connect_session_token": 401, "unauthorized": 401,
    "forbidden": 403, "invalid_permissions": 403, "integration_not_allowed": 403,
    "outbound_url_not_allowed": 403, "not_found": 404, "unknown_provider_config": 404,
    "unknown_connection": 404, "unknown_provider_template": 404, "unknown_log_record": 404,
    "unknown_environment": 404, "unknown_account": 401, "method_not_allowed": 405, "duplicate_key_name": 409,
    "duplicate_account": 409, "connection_exists": 409, "connection_already_exists": 409, "conflict": 409,
    "last_secret_key": 409, "restore_window_passed": 410, "payload_too_large": 413,
    "refresh_token_external_error": 424, "too_many_request": 429,
    "server_error": 500, "decryption_failed": 500, "upstream_unreachable": 502, "upstream_bad_encoding": 502,
    "upstream_response_too_large": 502, "service_unavailable": 503, "rate_limit_unavailable": 503,
    "upstream_timeout": 504,
}

# Codes that are their status's own class (errors.NotFound is code not_found and every 404).
_classes: dict[str, type[AuthportError]] = {"not_found": NotFound, "unauthorized": Unauthorized,
                                            "forbidden": Forbidden, "conflict": Conflict,
                                            "server_error": ServerError, "service_unavailable": ServiceUnavailable}
for _code, _cls in _classes.items():
    _cls.code = _code


def _class_name(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_") if part) or "UnknownError"


def for_code(code: str, status: int | None = None) -> type[AuthportError]:
    """The exception class of `code` (a subclass of its status's class)."""
    found = _classes.get(code)
    if found is None:
        status = KNOWN.get(code, status or 0)
        base = BY_STATUS.get(status) or (ServerError if status >= 500 else AuthportError)
        found = _classes[code] = type(_class_name(code), (base,), {"code": code, "__module__": __name__})
    return found


for _code in KNOWN:  # errors.UnknownConnection, errors.InvalidBody, … importable by name
    globals().setdefault(_class_name(_code), for_code(_code))


def _parse(content: bytes) -> tuple[Any, str | None, str]:
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        return content.decode("utf-8", "replace"), None, ""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return payload, error.get("code"), str(error.get("message", ""))
    if isinstance(error, str):  # Nango's older shape: {"error": "message", "type": "code"}
        return payload, payload.get("type"), error
    return payload, None, ""


def from_response(status: int, content: bytes, headers: Mapping[str, str]) -> AuthportError:
    payload, code, message = _parse(content)
    code = code or {401: "unauthorized", 404: "not_found", 429: "too_many_request"}.get(status, f"http_{status}")
    return for_code(code, status)(status, code, message or f"HTTP {status}", payload, headers)


def is_authport_refusal(headers: Mapping[str, str]) -> bool:
    """Whether a proxied answer may be Authport's own (JSON); the body decides (raise_for_authport)."""
    return "json" in (headers.get("content-type") or "")


def raise_for_authport(status: int, content: bytes, headers: Mapping[str, str]) -> None:
    """Raise when a proxied call's answer is Authport's own refusal (its error shape with one of its
    codes, e.g. unknown_connection, upstream_timeout); a provider's error answer is returned as is."""
    if status < 400 or not is_authport_refusal(headers):
        return
    _payload, code, _message = _parse(content)
    if code in KNOWN:
        raise from_response(status, content, headers)
