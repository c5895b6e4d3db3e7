"""Run one Authport process under gunicorn: `python -m gateway`, `python -m services.store`, …

Settings are read and the app is built before gunicorn starts, so a bad variable or a database
that cannot be used stops the process with one line naming the problem (exit status 2).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import sys

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from common import metrics_dir
from common.access_log import RequestIds, configure_logging, gunicorn_access_options
from common.ports import listen_problem
from common.providers import CatalogueError
from common.settings import Settings, SettingsError, load_settings
from common.startup import StartupError

PROCESSES = {
    "gateway": ("gateway.app", "GATEWAY_HOST", "SERVER_PORT"),
    "store": ("services.store.app", "BIND_HOST", "STORE_PORT"),
    "auth": ("services.auth.app", "BIND_HOST", "AUTH_PORT"),
    "proxy": ("services.proxy.app", "BIND_HOST", "PROXY_PORT"),
    "dashboard": ("services.dashboard.app", "BIND_HOST", "DASHBOARD_PORT"),
}


# Gateway and proxy mostly wait on other servers (the proxy on third-party APIs answering in
# hundreds of milliseconds): event-loop workers hold hundreds of such requests per process, where
# threads would run out. Both monkey-patch the standard library in their __main__, before any
# import. Store and auth keep threads: psycopg2 would block a gevent worker's whole loop.
# Each is gunicorn's worker with JsonErrors (below); the gevent one also paces slow clients.
GEVENT, THREADS = "common.gevent_worker.PacedGeventWorker", "common.serve.JsonThreadWorker"
WORKER_CLASSES = {"gateway": GEVENT, "proxy": GEVENT, "store": THREADS, "auth": THREADS, "dashboard": THREADS}

# What gunicorn's parser refuses, by its exception class (gunicorn 27's own statuses): the JSON code
# and message an SDK sees instead of gunicorn's HTML page. Any other parser error is a 400.
PARSER_ERRORS = {
    "LimitRequestLine": (414, "request_line_too_long", "The request line (method and URL) is too long."),
    "LimitRequestHeaders": (431, "request_headers_too_large", "The request's header fields are too large or too "
                                                              "many."),
    "UnsupportedTransferCoding": (501, "unsupported_transfer_coding", "This Transfer-Encoding is not supported."),
    "ExpectationFailed": (417, "expectation_failed", "This Expect header is not supported."),
    "ForbiddenProxyRequest": (403, "forbidden", "Request forbidden."),
    "ConfigurationProblem": (500, "server_error", "The server is misconfigured for this request."),
}
REQUEST_TIMEOUT = (408, "request_timeout", "The request was not received in time.")
# A response header the application tried to send is the application's fault (gunicorn: 500).
APP_FAULTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)
CLIENT_ERRORS = (http_errors.ParseException, http_errors.NoMoreData)
REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 414: "URI Too Long",
           417: "Expectation Failed", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented"}


class ClientTimeout(Exception):
    """The client took too long to send its request head or body (answered 408, then closed)."""


def error_answer(exc: BaseException) -> tuple[int, bytes]:
    """The status and JSON body answering what gunicorn could not parse or serve."""
    if isinstance(exc, ClientTimeout):
        status, code, message = REQUEST_TIMEOUT
    elif isinstance(exc, APP_FAULTS):
        status, code, message = 500, "server_error", "An unexpected error occurred while serving this request."
    elif type(exc).__name__ in PARSER_ERRORS:
        status, code, message = PARSER_ERRORS[type(exc).__name__]
    elif isinstance(exc, CLIENT_ERRORS):
        # The detail names the client's own bad bytes (a header name, the request line), nothing of ours.
        status, code, message = 400, "invalid_request", f"The request could not be parsed: {str(exc)[:200]}"
    else:
        status, code, message = 500, "server_error", "An unexpected error occurred while serving this request."
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return status, head.encode("latin-1") + body


class JsonErrors:
    """Worker mixin: what gunicorn answers itself (a request line too long, a malformed header, an
    error before the app could answer) comes in the one JSON error shape, not as an HTML page."""

    def handle_error(self, req, client, addr, exc):
        status, answer = error_answer(exc)
        peer = (addr or ("", -1))[0]
        if status >= 500:
            self.log.exception("error serving request from %s", peer, exc_info=exc)
        else:
            self.log.warning("invalid request from ip=%s: %s %s", peer, status, type(exc).__name__)
        try:
            util.write_nonblock(client, answer)
        except Exception:  # noqa: BLE001 - the client is gone: nothing to answer
            self.log.debug("could not send the error answer")


class JsonThreadWorker(JsonErrors, ThreadWorker):
    """gunicorn's gthread worker (store, auth) with JSON errors."""


class _Gunicorn(BaseApplication):
    def __init__(self, app, options: dict, slow_client_limits=None):
        self.application = app
        self.options = options
        self.slow_client_limits = slow_client_limits  # read by the gevent worker (common.gevent_worker)
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def gunicorn_options(process: str, settings: Settings) -> dict:
    _, host_var, port_var = PROCESSES[process]
    return {
        "bind": f"{getattr(settings, host_var)}:{getattr(settings, port_var)}",
        "workers": settings.WORKERS,
        "threads": settings.THREADS,
        "worker_class": WORKER_CLASSES[process],
        "worker_connections": settings.WORKER_CONNECTIONS,
        # The gateway's idle keep-alive wait is a setting (the worker also bounds heads and bodies);
        # behind it, the services keep their callers' pooled connections for 30 s.
        "keepalive": math.ceil(settings.GATEWAY_KEEPALIVE_TIMEOUT) if process == "gateway" else 30,
        "graceful_timeout": settings.GRACEFUL_TIMEOUT,
        "timeout": 120,
        "loglevel": settings.LOG_LEVEL,
        "errorlog": "-",
        "proc_name": f"authport-{process}",
        "control_socket_disable": True,
        "child_exit": metrics_dir.worker_exited,
        **gunicorn_access_options(settings),
        **tls_options(process, settings),
    }


def tls_options(process: str, settings: Settings) -> dict:
    """HTTPS on the gateway when TLS_CERT_FILE and TLS_KEY_FILE are set (the pair is checked with
    the settings; the key must match the certificate, or the process stops with one line)."""
    if process != "gateway" or not settings.TLS_CERT_FILE:
        return {}
    import ssl

    for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
        if not os.path.isfile(getattr(settings, name)):
            raise StartupError(f"{name}: no such file: {getattr(settings, name)}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.TLS_CERT_FILE,
                                                                           settings.TLS_KEY_FILE)
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(f"TLS_CERT_FILE, TLS_KEY_FILE: cannot load the certificate and its key ({exc})") from None
    return {"certfile": settings.TLS_CERT_FILE, "keyfile": settings.TLS_KEY_FILE, "ssl_context": tls12_context}


def tls12_context(_config, default_ssl_context_factory):
    """gunicorn's server context (certificate, key, its ciphers), refusing anything below TLS 1.2."""
    import ssl

    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_port_free(process: str, settings: Settings) -> None:
    """Fail in one line, naming the variable, when the port is taken (gunicorn would retry, then
    print a multi-line error)."""
    _, host_var, port_var = PROCESSES[process]
    host, port = getattr(settings, host_var), getattr(settings, port_var)
    problem = listen_problem(host, port)
    if problem:
        raise StartupError(f"{port_var}: cannot listen on {host}:{port} ({problem})")


def main(process: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        configure_logging(process, settings.LOG_FORMAT)
        logging.getLogger().setLevel(settings.LOG_LEVEL.upper())
        # peewee logs every statement with its parameters at debug: only when asked for by name.
        logging.getLogger("peewee").setLevel(logging.DEBUG if settings.LOG_SQL else logging.INFO)
        check_port_free(process, settings)
        metrics_dir.prepare(process)  # before prometheus_client is first imported (by the app's modules)
        module = importlib.import_module(PROCESSES[process][0])
        app = module.create_app(settings)
        from common import metrics

        metrics.install(app, process, settings.INTERNAL_API_KEY, app.extensions.get("authport_metrics_extra"))
        app.config["AUTHPORT_LAUNCH_TOKEN"] = settings.AUTHPORT_LAUNCH_TOKEN  # confirmed at /healthz
        options = gunicorn_options(process, settings)
    except (SettingsError, StartupError, CatalogueError) as exc:
        print(f"authport {process}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    _Gunicorn(RequestIds(app), options, slow_client_limits(process, settings)).run()


def slow_client_limits(process: str, settings: Settings):
    """The gateway's bounds on slow clients (the public faces them); none behind it, where the
    gateway's own pace (a caller's slow upload streamed through) must not be cut a second time."""
    if process != "gateway":
        return None
    from common.gevent_worker import SlowClientLimits  # imports gevent: after the gateway's monkey-patching

    return SlowClientLimits(header=settings.GATEWAY_HEADER_TIMEOUT, keepalive=settings.GATEWAY_KEEPALIVE_TIMEOUT,
                            body_idle=settings.GATEWAY_BODY_IDLE_TIMEOUT)
