"""Binds the app's webhook delivery loop (`services.auth.webhooks.WebhookSender`) to its settings
when the app registers this blueprint. It has no routes: auth no longer takes webhooks from the
store over HTTP; the store writes them to its outbox and auth's loop leases them from there."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webhooks", __name__)


@bp.record_once
def _bind(state) -> None:
    context = state.app.extensions["authport_auth"]
    context.webhooks.bind(context.settings)
