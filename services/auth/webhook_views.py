"""The store asks auth to send an auth webhook it cannot send itself (after a failed refresh):
auth queues it and answers at once."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from services.auth import webhooks
from services.auth.context import ctx

bp = Blueprint("webhooks", __name__, url_prefix="/internal")
REQUIRED = ("connection_id", "provider_config_key", "provider", "auth_mode", "environment", "operation", "success")


@bp.post("/webhooks/auth")
def queue_auth_webhook():
    """Body: the store's webhook report plus {operation, success, error?}; 202 {queued}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or any(name not in body for name in REQUIRED):
        raise ApiError(f"A JSON object with {', '.join(REQUIRED)} is required", code="invalid_body")
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    queued = webhooks.send(ctx().webhooks, body, str(body["operation"]), bool(body["success"]), error)
    return jsonify({"queued": queued}), 202
