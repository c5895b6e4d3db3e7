"""The proxy process: outbound API calls made on behalf of a connection (`/proxy/*`, served by
services/proxy/passage.py), and the egress addresses customers allowlist (`/egress-ips`).

It runs on gevent workers (`common.serve`): a proxied call mostly waits on a third-party API, so
hundreds are held in flight per process without a thread each.
"""

from __future__ import annotations

import socket

from flask import Flask, jsonify

from common.egress import Egress, EgressConfig
from common.httpapp import base_app, current_identity, install_health, require_internal_key
from common.internal import StoreClient
from common.settings import Settings, load_settings
from common.startup import StartupError, internal_key
from services.proxy.calls import ProxyCalls
from services.proxy.credentials import CredentialCache
from services.proxy.passage import ProxyPassage
from services.proxy.records import Recorder


def check_source_addresses(settings: Settings) -> None:
    """Fail at start, naming the variable, when a source address is not one of this machine's."""
    for address in settings.EGRESS_SOURCE_IPS:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, 0))
            except OSError as exc:
                raise StartupError(f"EGRESS_SOURCE_IPS: {address} is not an address of this machine "
                                   f"({exc.strerror or exc})") from None


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    internal_key(settings)
    check_source_addresses(settings)
    store = StoreClient(settings.service_url("store"), settings.INTERNAL_API_KEY, maxsize=256)
    credentials = CredentialCache(store, settings.NANGO_REDIS_URL, settings.REDIS_KEY_PREFIX)
    # Operation records travel on their own small pool, so a slow store never holds a connection
    # that a call's credential lookup is waiting for.
    recorder = Recorder(StoreClient(settings.service_url("store"), settings.INTERNAL_API_KEY, timeout=10, maxsize=2))
    calls = ProxyCalls(store, Egress(EgressConfig.from_settings(settings)), settings, credentials, recorder)
    app = base_app("authport.proxy")
    app.config["MAX_CONTENT_LENGTH"] = None  # bodies stream through; nothing is held whole
    # "//" in an endpoint must reach the path check, not become a redirect whose Location names
    # this internal service.
    app.url_map.merge_slashes = False
    require_internal_key(app, settings.INTERNAL_API_KEY)
    app.wsgi_app = ProxyPassage(app.wsgi_app, calls, settings.INTERNAL_API_KEY, settings)
    install_health(app, lambda: {"process": "ok"})

    @app.get("/egress-ips")
    def egress_ips():
        current_identity()
        return jsonify({"data": {"ips": list(settings.EGRESS_PUBLIC_IPS)}})

    return app
