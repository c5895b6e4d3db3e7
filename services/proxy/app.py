"""The proxy process: outbound API calls made on behalf of a connection (`/proxy/*`), and the
egress addresses customers allowlist (`/egress-ips`).

It runs on gevent workers (`common.serve`): a proxied call mostly waits on a third-party API, so
hundreds are held in flight per process without a thread each.
"""

from __future__ import annotations

import socket

from flask import Flask, jsonify, request

from common.egress import Egress, EgressConfig
from common.errors import ApiError
from common.httpapp import base_app, current_identity, install_health, require_internal_key
from common.internal import StoreClient
from common.settings import Settings, load_settings
from common.startup import StartupError
from services.proxy import contract
from services.proxy.calls import Body, ProxyCalls
from services.proxy.credentials import CredentialCache
from services.proxy.records import Recorder

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "REPORT"]


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


def raw_target() -> tuple[str, str]:
    """(path after /proxy, query) exactly as sent, percent-encoding kept."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
    path, _, query = raw.partition("?")
    return path[len("/proxy"):], query


def request_body(max_replay: int) -> Body:
    """Small bodies are kept (so retries can resend them); larger ones stream straight through."""
    length = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not length and not chunked:
        return Body(None, True, {})
    if length is not None and length <= max_replay:
        return Body(request.get_data(), True, {})
    return Body(request.stream, False, {"Content-Length": str(length)} if length is not None else {})


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    if not settings.INTERNAL_API_KEY:
        raise StartupError("INTERNAL_API_KEY: must be set (the secret services require from each other)")
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
    install_health(app, lambda: {"process": "ok"})

    @app.route("/proxy", methods=METHODS, strict_slashes=False)
    @app.route("/proxy/<path:_endpoint>", methods=METHODS, strict_slashes=False)
    def proxy(_endpoint: str = ""):
        identity = current_identity()
        if identity.key_kind != "secret":
            raise ApiError("Proxied calls need the environment's secret key.", code="forbidden", status=403)
        endpoint, query = raw_target()
        call = contract.parse(request.headers, endpoint, query, max_retries=settings.PROXY_MAX_RETRIES)
        return calls.run(identity, call, request.method, request_body(settings.PROXY_MAX_REPLAY_BYTES))

    @app.get("/egress-ips")
    def egress_ips():
        current_identity()
        return jsonify({"data": {"ips": list(settings.EGRESS_PUBLIC_IPS)}})

    return app
