"""One access line per request, the same in every process: method, path (never the query),
status, duration and request id; never a header, so never a key or a token.

The request id is the caller's `X-Request-Id` when it is a plain token, else one made here; it is
put back into the request (so the gateway passes it on and the store's records carry it) and
onto the answer. gunicorn writes the line once the answer has been sent, streamed bodies included.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from gunicorn.glogging import Logger

from common.settings import Settings

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The id of the request this thread or greenlet serves: every log line names it (RequestIdFilter),
# and calls to sibling services carry it on (common.internal.ServiceClient).
CURRENT = contextvars.ContextVar("authport_request_id", default=None)
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
        CURRENT.set(request_id)

        def start(status, headers, exc_info=None):
            if not any(name.lower() == "x-request-id" for name, _ in headers):
                headers = [*headers, ("X-Request-Id", request_id)]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start)


class AccessLogger(Logger):
    """gunicorn's logger, without the access lines of QUIET_PATHS below `debug`."""

    json_lines = False  # LOG_FORMAT=json: access lines as JSON objects (JsonAccessLogger)

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") in QUIET_PATHS and str(self.cfg.loglevel).lower() != "debug":
            return
        if not self.json_lines:
            super().access(resp, req, environ, request_time)
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        line = {"time": _iso(time.time()), "process": str(self.cfg.proc_name or "").removeprefix("authport-"),
                "level": "info", "type": "access", "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"), "status": int(status),
                "ms": round(request_time.total_seconds() * 1000), "request_id": environ.get(REQUEST_ID_ENVIRON)}
        self.access_log.info(json.dumps(line, separators=(",", ":")))


class JsonAccessLogger(AccessLogger):
    """LOG_FORMAT=json: gunicorn's own lines (booting, worker exits) are JSON objects too."""

    json_lines = True

    def setup(self, cfg):
        super().setup(cfg)
        formatter = JsonFormatter(str(cfg.proc_name or "gunicorn").removeprefix("authport-"))
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestIdFilter(logging.Filter):
    """Gives every record the current request's id ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = CURRENT.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """LOG_FORMAT=json: one object per line; a traceback goes in `exception`, never a second line."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _iso(record.created), "process": self.process, "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage(),
                "request_id": getattr(record, "request_id", "-")}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def configure_logging(process: str, log_format: str = "text") -> None:
    """The root logger of a process: text lines naming the process and the request id, or JSON."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s request_id=%(request_id)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]


def gunicorn_access_options(settings: Settings) -> dict:
    """Access lines on stdout at `info` and `debug`; none at `warning` and above."""
    logger = JsonAccessLogger if settings.LOG_FORMAT == "json" else AccessLogger
    if settings.LOG_LEVEL not in ("debug", "info"):
        return {"accesslog": None, "logger_class": logger}
    return {"accesslog": "-", "access_log_format": ACCESS_FORMAT, "logger_class": logger}
