"""The one error type every Authport process raises towards its callers.

Each error becomes `{"error": {"code", "message", ...}}` at one boundary (`common.httpapp`).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show to the caller."""

    status = 400
    code = "invalid_request"
    message: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        payload: Any = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.message = message if message is not None else type(self).message
        self.code = code or type(self).code
        self.status = status or type(self).status
        self.errors = errors
        self.payload = payload
        self.extra = extra or {}
        self.headers = dict(headers or {})  # answered with the error (Allow, Retry-After, rate-limit headers)
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code}
        if self.message is not None:
            error["message"] = self.message
        if self.errors is not None:
            error["errors"] = self.errors
        if self.payload is not None:
            error["payload"] = self.payload
        error.update(self.extra)
        return {"error": error}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class InvalidBody(ApiError):
    code = "invalid_body"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class RateLimited(ApiError):
    status = 429
    code = "too_many_request"


class Unavailable(ApiError):
    status = 503
    code = "service_unavailable"


# The one status of each code an Authport error is built with (tests/common/test_error_codes.py
# reads every construction site with `ast` and fails on a code missing here or answered otherwise).
STATUS: dict[str, int] = {
    "base_url_override_not_allowed": 400,
    "connection_already_exists": 409,
    "connection_test_failed": 400,
    "decryption_failed": 500,
    "duplicate_account": 409,
    "duplicate_key_name": 409,
    "environment_already_exists": 409,
    "environment_not_empty": 409,
    "expired_state": 410,
    "forbidden": 403,
    "generic_error_support": 500,
    "integration_not_allowed": 400,
    "invalid_account_name": 400,
    "invalid_auth_mode": 400,
    "invalid_body": 400,
    "invalid_connect_session_token_format": 401,
    "invalid_connection_config": 400,
    "invalid_content_type": 415,
    "invalid_credentials": 400,
    "invalid_headers": 400,
    "invalid_hmac": 400,
    "invalid_json": 400,
    "invalid_key_name": 400,
    "invalid_permissions": 403,
    "invalid_plan": 400,
    "invalid_proxy_path": 400,
    "invalid_query_params": 400,
    "invalid_request": 400,
    "invalid_signature": 401,
    "invalid_uri_params": 400,
    "last_secret_key": 409,
    "method_not_allowed": 405,
    "missing_client_credentials": 400,
    "missing_client_id": 400,
    "missing_client_secret": 400,
    "missing_hmac": 400,
    "not_found": 404,
    "not_supported_by_authport": 501,
    "outbound_url_not_allowed": 400,
    "payload_too_large": 413,
    "rate_limit_unavailable": 503,
    "refresh_token_external_error": 400,
    "reserved_environment": 400,
    "restore_window_passed": 410,
    "server_error": 400,
    "service_unavailable": 503,
    "state_err": 400,
    "too_many_request": 429,
    "unauthorized": 401,
    "unknown_api_key": 404,
    "unknown_connect_session_token": 401,
    "unknown_environment": 404,
    "unknown_environment_variable": 404,
    "unknown_err": 500,
    "unknown_log_record": 404,
    "unknown_provider_template": 404,
    "unknown_state": 404,
    "unsupported_content_type": 415,
    "upstream_bad_encoding": 502,
    "upstream_response_too_large": 502,
    "upstream_timeout": 504,
    "upstream_unreachable": 502,
}
# Nango's own server answers these codes with a status that depends on the route, and Authport
# answers as Nango does (NANGO_API.md, NANGO_TRANSCRIPT.md): `unknown_connection` is 400 on
# DELETE /connections/:id (transcript) and 404 on the metadata routes; `unknown_provider_config`
# is 400 on the connection routes and 404 on the proxy and the OAuth popup.
BY_ROUTE: dict[str, frozenset[int]] = {
    "unknown_connection": frozenset({400, 404}),
    "unknown_provider_config": frozenset({400, 404}),
}


def field_error(path: list[str | int], message: str, code: str = "invalid_string") -> dict[str, Any]:
    """One entry of the `errors` list, in the shape Nango's validators use."""
    return {"code": code, "message": message, "path": [str(p) if not isinstance(p, int) else p for p in path]}
