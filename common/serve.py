"""Run one Authport process under gunicorn: `python -m gateway`, `python -m services.store`, …

Settings are read and the app is built before gunicorn starts, so a bad variable or a database
that cannot be used stops the process with one line naming the problem (exit status 2).
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys

from gunicorn.app.base import BaseApplication

from common.providers import CatalogueError
from common.settings import Settings, SettingsError, load_settings
from common.startup import StartupError

PROCESSES = {
    "gateway": ("gateway.app", "GATEWAY_HOST", "SERVER_PORT"),
    "store": ("services.store.app", "BIND_HOST", "STORE_PORT"),
    "auth": ("services.auth.app", "BIND_HOST", "AUTH_PORT"),
    "proxy": ("services.proxy.app", "BIND_HOST", "PROXY_PORT"),
}


# Gateway and proxy mostly wait on other servers (the proxy on third-party APIs answering in
# hundreds of milliseconds): event-loop workers hold hundreds of such requests per process, where
# threads would run out. Both monkey-patch the standard library in their __main__, before any
# import. Store and auth keep threads: psycopg2 would block a gevent worker's whole loop.
WORKER_CLASSES = {"gateway": "gevent", "proxy": "gevent", "store": "gthread", "auth": "gthread"}


class _Gunicorn(BaseApplication):
    def __init__(self, app, options: dict):
        self.application = app
        self.options = options
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
        "keepalive": 30,
        "graceful_timeout": 10,
        "timeout": 120,
        "loglevel": settings.LOG_LEVEL,
        "errorlog": "-",
        "proc_name": f"authport-{process}",
        "control_socket_disable": True,
    }


def check_port_free(process: str, settings: Settings) -> None:
    """Fail in one line, naming the variable, when the port is taken (gunicorn would retry, then
    print a multi-line error); the same SO_REUSEADDR as gunicorn, so TIME_WAIT is no obstacle."""
    _, host_var, port_var = PROCESSES[process]
    host, port = getattr(settings, host_var), getattr(settings, port_var)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartupError(f"{port_var}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def main(process: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        logging.getLogger().setLevel(settings.LOG_LEVEL.upper())
        check_port_free(process, settings)
        module = importlib.import_module(PROCESSES[process][0])
        app = module.create_app(settings)
    except (SettingsError, StartupError, CatalogueError) as exc:
        print(f"authport {process}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    _Gunicorn(app, gunicorn_options(process, settings)).run()
