"""What every Authport Flask app shares: JSON errors, the internal secret, health routes."""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common import wsgi
from common.errors import ApiError, Forbidden, Unauthorized, Unavailable
from common.identity import Identity
from common.version import VERSION

log = logging.getLogger("authport")
LAUNCH_HEADER = "X-Authport-Launch"

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "invalid_content_type",
    429: "too_many_request",
}


def error_response(error: ApiError):
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def install_errors(app: Flask) -> None:
    """Turn every error, expected or not, into the one JSON error shape."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = HTTP_CODES.get(error.code or 500, "server_error")
        message = {404: "Route not found", 405: f"Method {request.method} not allowed on this route"}.get(
            error.code, error.description
        )
        response = error_response(ApiError(message, code=code, status=error.code or 500))
        if error.code == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
        log.exception("unhandled error request_id=%s %s %s", request_id, request.method, request.path)
        return error_response(
            ApiError(
                f"An unexpected error occurred, please contact support with this unique id: {request_id}",
                code="generic_error_support",
                status=500,
            )
        )


def require_internal_key(app: Flask, internal_key: str,
                         open_paths: tuple[str, ...] = ("/healthz", "/readyz", "/metrics")) -> None:
    """Refuse every request that does not carry the internal secret (constant-time check)."""
    app.extensions["authport_internal_key"] = internal_key  # /readyz shows its details to holders only

    @app.before_request
    def _check_internal_key():
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        if request.path in open_paths:
            return None
        if not wsgi.carries_internal_key(request.environ, internal_key):
            raise Forbidden("This service only accepts requests from Authport itself.")
        g.identity = Identity.from_headers(request.headers)
        return None


def current_identity() -> Identity:
    identity = getattr(g, "identity", None)
    if identity is None:
        raise Unauthorized("The request carries no resolved identity.")
    return identity


def install_health(app: Flask, ready_check: Callable[[], dict[str, str]], internal_key: str | None = None) -> None:
    """`/healthz`: the process answers. `/readyz`: its dependencies answer too.

    Both are open (probes carry no secret), so what they tell the public is only ready or not:
    the state of each dependency (which services exist, what failed) is shown to callers that
    carry the internal secret (`internal_key`, else the one `require_internal_key` installed) in
    INTERNAL_KEY_HEADER or as `Authorization: Bearer`.
    """

    @app.get("/healthz")
    def _healthz():
        body = {"status": "ok"}
        asked = request.headers.get(LAUNCH_HEADER)
        if asked is not None:  # `make up` asks whether this process is one it started (common.launcher)
            token = app.config.get("AUTHPORT_LAUNCH_TOKEN") or ""
            body["launch"] = "match" if token and hmac.compare_digest(asked.encode(), token.encode()) else "other"
        return jsonify(body)

    @app.get("/readyz")
    def _readyz():
        checks = ready_check()
        ok = all(state == "ok" for state in checks.values())
        if carries_internal_key(internal_key or app.extensions.get("authport_internal_key")):
            return jsonify({"status": "ready" if ok else "unavailable", "checks": checks, "version": VERSION}), (
                200 if ok else 503)
        if ok:
            return jsonify({"status": "ready"})
        return error_response(Unavailable("Not ready: a dependency does not answer."))


def carries_internal_key(expected: str | None) -> bool:
    """Whether this request holds the internal secret, in INTERNAL_KEY_HEADER or as `Authorization: Bearer`."""
    return wsgi.carries_internal_key(request.environ, expected, bearer=True)


def quiet_request_lines() -> None:
    """urllib3 logs each request line, query string included, at debug level: OAuth codes, session
    tokens and API keys travel in query strings, so those lines stay out of the logs at any LOG_LEVEL."""
    logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


def base_app(name: str) -> Flask:
    quiet_request_lines()
    app = Flask(name)
    # Never answer with a redirect: werkzeug's `//` → 308 would put an internal URL in Location.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False
    app.json.compact = True
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    install_errors(app)
    return app
