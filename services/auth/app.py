"""The auth process: every exchange with identity providers happens here. Connect sessions,
the OAuth 2 popup flow, credential capture (API key, basic, client credentials); it persists
through the store's internal routes and reaches the outside world only through the egress layer."""

from __future__ import annotations

from flask import Flask, request

from common.httpapp import base_app, install_health, require_internal_key
from common.providers import Catalogue
from common.settings import Settings, load_settings
from common.startup import internal_key
from common.store_flows import FlowStore
from services.auth.context import AuthContext
from services.auth.provider_calls import Outbound
from services.auth.webhooks import WebhookSender


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    internal_key(settings)
    app = base_app("authport.auth")
    outbound = Outbound.from_settings(settings)
    app.extensions["authport_auth"] = AuthContext(
        settings=settings, catalogue=Catalogue.configured(settings),
        store=FlowStore(settings.service_url("store"), settings.INTERNAL_API_KEY),
        outbound=outbound, webhooks=WebhookSender(outbound),
    )
    require_internal_key(app, settings.INTERNAL_API_KEY)
    install_health(app, lambda: {"process": "ok"})

    @app.before_request
    def _read_body():
        # An unread body makes the server close the connection, failing the gateway's next request on it.
        request.get_data(cache=True)

    from services.auth import (
        capture_views,
        connect_page,
        logo_views,
        mode_views,
        oauth_views,
        refresh_views,
        session_views,
    )

    app.register_blueprint(session_views.bp)
    app.register_blueprint(oauth_views.bp)
    app.register_blueprint(capture_views.bp)
    app.register_blueprint(mode_views.bp)
    app.register_blueprint(refresh_views.bp)
    app.register_blueprint(connect_page.bp)
    app.register_blueprint(logo_views.bp)
    from services.auth import webhook_views

    app.register_blueprint(webhook_views.bp)
    return app
