"""Routes only sibling services call (the gateway resolving a key, the proxy fetching credentials
and reporting its calls' operation records)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from common.httpapp import current_identity
from common.identity import require_secret
from common.validation import json_body, validate
from services.store import keys, operations, proxy_credentials, usage
from services.store.context import ctx

bp = Blueprint("internal", __name__, url_prefix="/internal")


@bp.post("/keys/resolve")
def resolve_key():
    body = request.get_json(silent=True) or {}
    secret, kind = body.get("key"), body.get("kind", "secret")
    if not isinstance(secret, str) or kind not in ("secret", "public"):
        raise ApiError("key (string) and kind (secret|public) are required", code="invalid_body")
    identity = keys.resolve(ctx().cipher, secret, kind)
    if identity is None:
        return jsonify({"error": {"code": "unknown_key"}}), 404
    return jsonify({"identity": identity.to_dict()})


@bp.get("/connections/credentials")
def connection_credentials():
    """Credentials, connection config and provider proxy settings of one connection (the proxy).

    A GET with the names in the query: the proxy asks on every call, and a request without a body
    is one write on the socket instead of two.
    """
    key, connection_id = request.args.get("provider_config_key"), request.args.get("connection_id")
    if not key or not connection_id:
        raise ApiError("provider_config_key and connection_id are required", code="invalid_query_params")
    identity = current_identity()
    require_secret(identity, "Proxied calls need the environment's secret key.")
    found = proxy_credentials.for_outbound_call(ctx(), identity.environment_id, key, connection_id,
                                       force_refresh=request.args.get("force_refresh") == "true")
    return jsonify({"connection": found})


@bp.post("/operations")
def record_operations():
    """A batch of proxied calls' records (the proxy's recorder): all stored, or none and 400."""
    batch = validate(operations.ProxyBatch, json_body(request))
    return jsonify({"recorded": operations.record_proxy_calls(batch)})


@bp.post("/usage")
def record_usage():
    """Requests and 429s per minute a gateway counted since its last report (added to the others')."""
    return jsonify({"recorded": usage.record(validate(usage.UsageReport, json_body(request)))})
