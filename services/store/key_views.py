"""The environment's API keys, managed with its secret key (reached through the gateway):

    GET    /environment/keys                  every key, live and revoked, without secrets
    POST   /environment/keys {name}           a new named secret key, shown once (201)
    POST   /environment/keys/<name>/rotate    a new key for that name; the old one is revoked
    DELETE /environment/keys/<name>           revoke (not the environment's last live secret key)
    POST   /environment/public-key/rotate     a new public key; the old one is revoked

Every route acts on the caller's own environment only. After each committed change the keys
epoch is bumped, so that every gateway process forgets the keys it cached.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from common.errors import ApiError, field_error
from common.httpapp import current_identity
from common.identity import require_secret
from common.validation import json_body
from services.store import actors, keys
from services.store.context import ctx
from services.store.formatters import iso
from services.store.models import ApiKey
from services.store.notify import EXTENSION, KeysEpoch

bp = Blueprint("environment_keys", __name__, url_prefix="/environment")


@bp.record_once
def _announcer(state) -> None:
    settings = state.app.extensions["authport_store"].settings
    state.app.extensions[EXTENSION] = KeysEpoch.from_settings(settings)


@bp.before_request
def _secret_key_only():
    request.get_data(cache=True)  # read the body even when refusing, so the connection stays usable
    require_secret(current_identity(), "Managing API keys needs the environment's secret key.")


def _who() -> dict:
    """The actor and request id of the log record each change writes."""
    return {"actor": actors.current_actor(), "request_id": actors.request_id()}


def announce() -> None:
    current_app.extensions[EXTENSION].bump()


def listed(row: ApiKey) -> dict:
    return {"name": row.name, "kind": row.kind, "created_at": iso(row.created_at),
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at)}


def shown_once(row: ApiKey, secret: str) -> dict:
    return {"name": row.name, "kind": row.kind, "key": secret, "created_at": iso(row.created_at)}


def path_name(name: str) -> str:
    try:
        return keys.check_name(name)
    except ApiError as error:
        raise ApiError(error.message, code="invalid_uri_params", status=400) from None


def body_name() -> str:
    body = json_body(request, required=False)
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object with a name.", code="invalid_body")
    unknown = sorted(set(body) - {"name"})
    if unknown:
        raise ApiError(f"Unrecognized key(s) in the body: {', '.join(unknown)}", code="invalid_body",
                       errors=[field_error([], f"Unrecognized key(s): {', '.join(unknown)}", "unrecognized_keys")])
    name = body.get("name")
    if not isinstance(name, str) or not keys.NAME.fullmatch(name):
        message = f"name must be {keys.NAME_RULE}"
        raise ApiError(message, code="invalid_body", errors=[field_error(["name"], message)])
    return name


@bp.get("/keys")
def list_keys():
    return jsonify({"data": [listed(row) for row in keys.list_keys(current_identity().environment_id)]})


@bp.post("/keys")
def create_key():
    row, secret = keys.add_secret_key(ctx().cipher, current_identity().environment_id, body_name(), **_who())
    announce()
    return jsonify({"data": shown_once(row, secret)}), 201


@bp.post("/keys/<name>/rotate")
def rotate_key(name: str):
    row, secret = keys.rotate(ctx().cipher, current_identity().environment_id, "secret", path_name(name), **_who())
    announce()
    return jsonify({"data": shown_once(row, secret)})


@bp.delete("/keys/<name>")
def revoke_key(name: str):
    row = keys.revoke(current_identity().environment_id, path_name(name), **_who())
    announce()
    return jsonify({"data": listed(row)})


@bp.post("/public-key/rotate")
def rotate_public_key():
    row, secret = keys.rotate(ctx().cipher, current_identity().environment_id, "public", **_who())
    announce()
    return jsonify({"data": shown_once(row, secret)})
