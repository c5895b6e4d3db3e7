"""Plain-WSGI answers for the hot paths that bypass Flask (the gateway's and the proxy's
`/proxy/*`): the same JSON error shape and 500 as `common.httpapp`, without a request context."""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from urllib.parse import quote

from werkzeug.http import HTTP_STATUS_CODES

from common.errors import ApiError
from common.identity import INTERNAL_KEY_HEADER

log = logging.getLogger("authport")

# Every method a public route accepts: the SDK's proxy sends PROPFIND and REPORT (WebDAV APIs).
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})
# RFC 9110 §7.6.1: headers of one connection, never passed on by a proxy (nor by the gateway).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade"})
PATH_SAFE = "/!$&'()*+,;=:@-._~"  # RFC 3986 pchar and "/": kept as they are when re-encoding a path
_INTERNAL_KEY = "HTTP_" + INTERNAL_KEY_HEADER.upper().replace("-", "_")


def carries_internal_key(environ, expected: str | None, bearer: bool = False) -> bool:
    """Whether the request holds the internal secret in INTERNAL_KEY_HEADER (or, with `bearer`, as
    `Authorization: Bearer`, what a Prometheus scrape sends), compared in constant time."""
    if not expected:
        return False
    given = environ.get(_INTERNAL_KEY, "")
    if not given and bearer:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode(), expected.encode())


def raw_target(environ) -> str:
    """The path and query exactly as the caller sent them (percent-encoding kept).

    Every service is sent these bytes, never the decoded path: decoding turns `%3F` into a real
    query (`/connections/u1%3Fprovider_config_key%3Dgh`) and `%23` into a fragment the HTTP client
    cuts off, so the service would act on another request than the one the gateway authorised.
    The service decodes the path as the gateway did and sees the same path and query."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/") and "#" not in raw:
        return raw
    query = environ.get("QUERY_STRING")
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    return quote(path, safe=PATH_SAFE) + (f"?{query}" if query else "")


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
               *error.headers.items()]
    start_response(status_line(error.status), headers)
    return [payload]
