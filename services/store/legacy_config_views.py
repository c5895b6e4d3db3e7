"""The legacy integration routes older SDKs call (`@nangohq/node` 0.42: listIntegrations aside,
getIntegration(key), createIntegration, updateIntegration, deleteIntegration):

    GET    /config                       {configs: [{unique_key, provider, syncs, actions}]}
    GET    /config/<key>?include_creds=  {config: {…, client_id, client_secret, scopes, …}}
    POST   /config  {provider, provider_config_key, oauth_client_id?, oauth_client_secret?, oauth_scopes?, app_link?}
    PUT    /config  (the same body)      {config: {unique_key, provider}}
    DELETE /config/<key>                 204

Each is translated into the body of its `/integrations` twin and runs the same code
(services/store/integrations.py): the same validation, the same errors, the same records.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError, field_error
from common.validation import json_body, validate
from services.store import actors, integrations, notify
from services.store.context import ctx
from services.store.schemas import IntegrationCreate, IntegrationUpdate
from services.store.views import env_id, integration_key, require_secret_key

bp = Blueprint("legacy_config", __name__)
CREDENTIAL_FIELDS = {"oauth_client_id": "client_id", "oauth_client_secret": "client_secret",
                     "oauth_scopes": "scopes", "app_link": "app_link"}


@bp.before_request
def _secret_key_only():
    request.get_data(cache=True)
    require_secret_key()


def legacy(record) -> dict:
    return {"unique_key": record.unique_key, "provider": record.provider, "syncs": [], "actions": []}


def translated() -> tuple[str, str, dict | None]:
    """(provider, unique key, credentials or None) from a legacy body; unknown fields are refused."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object.", code="invalid_body",
                       errors=[field_error([], "Expected object", "invalid_type")])
    unknown = sorted(set(body) - {"provider", "provider_config_key", *CREDENTIAL_FIELDS})
    if unknown:
        raise ApiError(f"Unrecognized key(s) in the body: {', '.join(unknown)}", code="invalid_body",
                       errors=[field_error([], f"Unrecognized key(s): {', '.join(unknown)}", "unrecognized_keys")])
    given = {CREDENTIAL_FIELDS[k]: v for k, v in body.items() if k in CREDENTIAL_FIELDS and v is not None}
    credentials = None
    if given:
        mode = (ctx().catalogue.get(body.get("provider")) or {}).get("auth_mode")
        credentials = {"type": mode if mode in ("OAUTH1", "TBA") else "OAUTH2", **given}
    return body.get("provider"), body.get("provider_config_key"), credentials


@bp.get("/config")
def list_configs():
    return jsonify({"configs": [legacy(r) for r in integrations.list_all(env_id())]})


@bp.get("/config/<path:unique_key>")
def get_config(unique_key: str):
    record = integrations.get(env_id(), integration_key(unique_key))
    out = legacy(record)
    if request.args.get("include_creds") == "true":
        creds = integrations.credentials_view(ctx(), record) or {}
        out.update(client_id=creds.get("client_id"), client_secret=creds.get("client_secret"),
                   scopes=creds.get("scopes"), app_link=record.app_link, has_webhook=False,
                   created_at=integrations.present(ctx(), record)["created_at"])
    return jsonify({"config": out})


@bp.post("/config")
def create_config():
    provider, unique_key, credentials = translated()
    body = validate(IntegrationCreate, {"provider": provider, "unique_key": unique_key,
                                        **({"credentials": credentials} if credentials else {})})
    record = integrations.create(ctx(), env_id(), body)
    actors.record("integration.created", provider_config_key=record.unique_key, detail={"provider": record.provider})
    return jsonify({"config": {"unique_key": record.unique_key, "provider": record.provider}})


@bp.put("/config")
def update_config():
    provider, unique_key, credentials = translated()
    record = integrations.get(env_id(), integration_key(unique_key if isinstance(unique_key, str) else ""))
    if provider != record.provider:
        raise integrations.invalid("provider", f"The integration's provider is {record.provider}")
    body = validate(IntegrationUpdate, {"credentials": credentials} if credentials else {})
    record = integrations.update(ctx(), env_id(), record.unique_key, body)
    notify.connection_changed(ctx().settings)
    actors.record("integration.updated", provider_config_key=record.unique_key,
                  detail={"fields": sorted(body.model_dump(exclude_none=True))})
    return jsonify({"config": {"unique_key": record.unique_key, "provider": record.provider}})


@bp.delete("/config/<path:unique_key>")
def delete_config(unique_key: str):
    unique_key = integration_key(unique_key)
    integrations.delete(env_id(), unique_key)
    notify.connection_changed(ctx().settings)
    actors.record("integration.deleted", provider_config_key=unique_key)
    return "", 204
