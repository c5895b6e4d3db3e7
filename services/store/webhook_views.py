"""The environment's auth webhook URL, managed with its secret key (reached through the gateway):

    GET   /environment/webhook                  {"data": {"url": str | null}}
    PATCH /environment/webhook {"url": str|null} set or clear it; answers like GET

The signing key is the environment's default secret key (see `services.store.webhooks`).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError, field_error
from common.httpapp import current_identity
from common.validation import json_body
from services.store import webhooks
from services.store.models import Environment

bp = Blueprint("environment_webhook", __name__, url_prefix="/environment")


@bp.before_request
def _secret_key_only():
    request.get_data(cache=True)  # read the body even when refusing, so the connection stays usable
    if current_identity().key_kind != "secret":
        raise ApiError("Managing the webhook needs the environment's secret key.", code="forbidden", status=403)


def shown(env: Environment):
    return jsonify({"data": {"url": env.webhook_url}})


@bp.get("/webhook")
def get_webhook():
    return shown(Environment.get_by_id(current_identity().environment_id))


@bp.patch("/webhook")
def set_webhook():
    body = json_body(request, required=False)
    if not isinstance(body, dict) or "url" not in body:
        raise ApiError("The body must be a JSON object with a url (a string or null).", code="invalid_body",
                       errors=[field_error(["url"], "Required", "invalid_type")])
    unknown = sorted(set(body) - {"url"})
    if unknown:
        raise ApiError(f"Unrecognized key(s) in the body: {', '.join(unknown)}", code="invalid_body",
                       errors=[field_error([], f"Unrecognized key(s): {', '.join(unknown)}", "unrecognized_keys")])
    url = webhooks.check_url(body["url"])
    env = Environment.get_by_id(current_identity().environment_id)
    webhooks.set_url(env, url)
    return shown(env)
