"""One access line per request, the same in every process: method, path (never the query),
status, duration and request id; never a header, so never a key or a token.

The request id is the caller's `X-Request-Id` when it is a plain token, else one made here; it is
put back into the request (so the gateway passes it on and the store's records carry it) and
onto the answer. gunicorn writes the line once the answer has been sent, streamed bodies included.
"""

from __future__ import annotations

import re
import uuid

from gunicorn.glogging import Logger

from common.settings import Settings

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"
# gunicorn atoms: %(U)s is PATH_INFO, the path without the query string.
ACCESS_FORMAT = "%(t)s access %(m)s %(U)s %(s)s %(M)sms request_id=%({http_x_request_id}e)s"
# Lines of machines, not people: probes, metrics scrapes, and auth's once-a-second look for
# webhooks due. At info they would bury every other line; at debug they are logged too.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/health", "/metrics", "/internal/webhook-outbox/lease"})


class RequestIds:
    """WSGI middleware: every request has a well-formed id, and every answer names it."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        given = environ.get(REQUEST_ID_ENVIRON, "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        environ[REQUEST_ID_ENVIRON] = request_id

        def start(status, headers, exc_info=None):
            if not any(name.lower() == "x-request-id" for name, _ in headers):
                headers = [*headers, ("X-Request-Id", request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start)


class AccessLogger(Logger):
    """gunicorn's logger, without the access lines of QUIET_PATHS below `debug`."""

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") in QUIET_PATHS and str(self.cfg.loglevel).lower() != "debug":
            return
        super().access(resp, req, environ, request_time)


def gunicorn_access_options(settings: Settings) -> dict:
    """Access lines on stdout at `info` and `debug`; none at `warning` and above."""
    if settings.LOG_LEVEL not in ("debug", "info"):
        return {"accesslog": None}
    return {"accesslog": "-", "access_log_format": ACCESS_FORMAT, "logger_class": AccessLogger}
