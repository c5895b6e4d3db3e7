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
    ):
        self.message = message if message is not None else type(self).message
        self.code = code or type(self).code
        self.status = status or type(self).status
        self.errors = errors
        self.payload = payload
        self.extra = extra or {}
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


def field_error(path: list[str | int], message: str, code: str = "invalid_string") -> dict[str, Any]:
    """One entry of the `errors` list, in the shape Nango's validators use."""
    return {"code": code, "message": message, "path": [str(p) if not isinstance(p, int) else p for p in path]}
