"""The environment's auth webhook URL, managed with its secret key (reached through the gateway):

    GET   /environment/webhook                  {"data": {"url": str | null}}
    PATCH /environment/webhook {"url": str|null} set or clear it; answers like GET
    POST  /environment/webhook-signing-key/rotate  {"data": {"webhook_signing_key": str}}, shown once

and the webhook outbox, which only auth calls (internal secret; the gateway routes no /internal path):

    POST /internal/webhook-outbox/lease {worker, limit, lease_seconds}
         {"deliveries": [{id, url, signing_key, body, attempts, label}]}   rows now this worker's
    POST /internal/webhook-outbox/<id>/attempts {worker, outcome, status, error, duration_ms, retry_in}
         {"recorded": bool}   false when the row was no longer the worker's (delivered by another)

The signing key is the environment's default secret key until it rotates one of its own (see
`services.store.webhooks`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, jsonify, request
from pydantic import Field

from common.errors import ApiError, field_error
from common.httpapp import current_identity
from common.identity import require_secret
from common.validation import Strict, json_body, validate
from services.store import actors, webhook_outbox, webhooks
from services.store.context import ctx
from services.store.models import Environment

bp = Blueprint("environment_webhook", __name__)
Worker = Annotated[str, Field(min_length=1, max_length=200)]


class LeaseRequest(Strict):
    worker: Worker
    limit: int = Field(ge=1, le=100)
    lease_seconds: float = Field(gt=0, le=86400)


class Attempt(Strict):
    worker: Worker
    outcome: Literal["delivered", "retrying", "failed"]
    status: int | None = Field(default=None, ge=100, le=599)
    error: str | None = Field(default=None, max_length=200)
    duration_ms: float = Field(ge=0)
    retry_in: float = Field(default=0.0, ge=0, le=86400)


def _secret_key_only():
    request.get_data(cache=True)  # read the body even when refusing, so the connection stays usable
    require_secret(current_identity(), "Managing the webhook needs the environment's secret key.")


def shown(env: Environment):
    return jsonify({"data": {"url": env.webhook_url}})


@bp.get("/environment/webhook")
def get_webhook():
    _secret_key_only()
    return shown(Environment.get_by_id(current_identity().environment_id))


@bp.patch("/environment/webhook")
def set_webhook():
    _secret_key_only()
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


@bp.post("/environment/webhook-signing-key/rotate")
def rotate_signing_key():
    """A signing key of the environment's own, returned once; every webhook attempt from now on
    (also of one queued before) is signed with it, the default secret key no longer."""
    _secret_key_only()
    env = Environment.get_by_id(current_identity().environment_id)
    key = webhooks.rotate_signing_key(ctx(), env, actor=actors.current_actor(), request_id=actors.request_id())
    return jsonify({"data": {"webhook_signing_key": key}})


@bp.post("/internal/webhook-outbox/lease")
def lease_webhooks():
    asked = validate(LeaseRequest, json_body(request))
    return jsonify({"deliveries": webhook_outbox.lease(ctx(), asked.worker, asked.limit, asked.lease_seconds)})


@bp.post("/internal/webhook-outbox/<int:outbox_id>/attempts")
def record_webhook_attempt(outbox_id: int):
    done = validate(Attempt, json_body(request))
    return jsonify({"recorded": webhook_outbox.record_attempt(outbox_id, done.worker, done.outcome, done.status,
                                                              done.error, done.duration_ms, done.retry_in)})
