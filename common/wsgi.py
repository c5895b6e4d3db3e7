"""Plain-WSGI answers for the hot paths that bypass Flask (the gateway's and the proxy's
`/proxy/*`): the same JSON error shape and 500 as `common.httpapp`, without a request context."""

from __future__ import annotations

import json
import logging
import uuid

from werkzeug.http import HTTP_STATUS_CODES

from common.errors import ApiError

log = logging.getLogger("authport")


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}"


def unexpected(environ) -> ApiError:
    """The one 500 of every process: a request id in the log and the body, no internals."""
    request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
    log.exception("unhandled error request_id=%s %s %s", request_id, environ.get("REQUEST_METHOD"),
                  environ.get("PATH_INFO"))
    return ApiError(f"An unexpected error occurred, please contact support with this unique id: {request_id}",
                    code="generic_error_support", status=500)


def error_answer(start_response, error: ApiError, extra_headers=()) -> list[bytes]:
    """`{"error": {...}}` with the error's status and headers, as `common.httpapp.error_response`."""
    payload = json.dumps(error.body(), separators=(",", ":")).encode() + b"\n"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *extra_headers,
               *(getattr(error, "headers", None) or {}).items()]
    start_response(status_line(error.status), headers)
    return [payload]
