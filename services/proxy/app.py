"""The proxy process. Outbound API calls made on behalf of a connection; the /proxy
contract arrives with the proxy issue."""

from __future__ import annotations

from flask import Flask

from common.httpapp import base_app, install_health, require_internal_key
from common.settings import Settings, load_settings
from common.startup import StartupError


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    if not settings.INTERNAL_API_KEY:
        raise StartupError("INTERNAL_API_KEY: must be set (the secret services require from each other)")
    app = base_app("authport.proxy")
    require_internal_key(app, settings.INTERNAL_API_KEY)
    install_health(app, lambda: {"process": "ok"})
    return app
