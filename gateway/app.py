"""The gateway: the only public process. Authenticates callers and routes to the services."""

from __future__ import annotations

from flask import Flask, jsonify, request

from common.errors import NotFound
from common.httpapp import base_app, install_health
from common.internal import ServiceClient, StoreClient
from common.settings import Settings, load_settings
from common.startup import StartupError
from gateway import authn, forwarding, routing

CORS_ALLOW_HEADERS = ("Authorization, Content-Type, Accept, Provider-Config-Key, Connection-Id, Base-Url-Override, "
                      "Retries, Retry-On, Decompress, Nango-Activity-Log-Id, Nango-Is-Dry-Run, Nango-Is-Sync, "
                      "Nango-Is-Script, Accept-Language")
CORS_EXPOSE_HEADERS = ("Authorization, Etag, Content-Type, Content-Length, X-Nango-Signature, X-RateLimit-Limit, "
                       "X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    if not settings.INTERNAL_API_KEY:
        raise StartupError("INTERNAL_API_KEY: must be set (the secret services require from each other)")
    key = settings.INTERNAL_API_KEY
    store = StoreClient(settings.service_url("store"), key)
    clients = {
        "store": store,
        "auth": ServiceClient(settings.service_url("auth"), key),
        "proxy": ServiceClient(settings.service_url("proxy"), key, timeout=300),
    }
    app = base_app("authport.gateway")
    app.config["MAX_CONTENT_LENGTH"] = None  # the owning service enforces its own limit

    @app.after_request
    def _cors(response):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.get("/health")
    def health():
        return jsonify({"result": "ok"})

    def ready() -> dict[str, str]:
        states = {}
        for name, client in clients.items():
            try:
                status = client.request("GET", "/healthz").status
                states[name] = "ok" if status == 200 else f"status {status}"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                states[name] = f"error: {type(exc).__name__}"
        return states

    install_health(app, ready)

    @app.route("/<path:_path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def route(_path: str):
        service = routing.owner(request.path)
        if service is None:
            raise NotFound("Route not found")
        if request.method == "OPTIONS":
            return "", 204
        identity = authn.authenticate(store, request.headers.get("Authorization"))
        return forwarding.forward(clients[service], identity, stream=service == "proxy")

    return app
