"""Provider webhooks, reached through the gateway with no API key (the provider calls):

    POST /webhook/<environment uuid>/<provider config key>   {"success": true}
         401 invalid_signature when the provider signs and the signature is wrong; 404
         unknown_environment / unknown_provider_config; 415 for a body neither JSON nor a form.

See `services.store.inbound_webhooks`.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from services.store import inbound_webhooks
from services.store.context import ctx

bp = Blueprint("inbound_webhooks", __name__)


@bp.post("/webhook/<environment_uid>/<provider_config_key>")
def receive(environment_uid: str, provider_config_key: str):
    answer = inbound_webhooks.receive(ctx(), environment_uid, provider_config_key, request.get_data(),
                                      request.content_type or "", request.headers)
    return jsonify(answer)
