"""Credentials the end user types or holds: API key, basic, OAuth 2 client credentials and NetSuite
TBA tokens.

Each route answers JSON: 200 `{connectionId, providerConfigKey}`, or Nango's error shape, which
the frontend SDK turns into `AuthError(message, code)`."""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, jsonify, request
from pydantic import StringConstraints

from common import request_signing as signing
from common.errors import ApiError
from common.httpapp import current_identity
from common.validation import Strict, json_body, validate
from services.auth import oauth2, verification, webhooks
from services.auth.context import ctx
from services.auth.flow import Flow, begin, read_query
from services.auth.schemas import ApiKeyBody, BasicBody, ClientCredentialsBody, Credential, dump

Override = Annotated[str, StringConstraints(min_length=1, max_length=4096)]

bp = Blueprint("capture", __name__)


def start(key: str, mode: str) -> Flow:
    flow = begin(ctx(), current_identity(), key, read_query(request.args))
    if flow.auth_mode != mode:
        raise ApiError(f"The provider {flow.integration['provider']} does not use {mode} authentication",
                       code="invalid_auth_mode", status=400)
    return flow


def save(flow: Flow, credentials: dict):
    saved = ctx().store.save_connection({
        "environment_id": flow.identity.environment_id, "provider_config_key": flow.provider_config_key,
        "connection_id": flow.connection_id, "connect_session_id": flow.session_id,
        "credentials": credentials, "connection_config": flow.connection_config,
        "may_overwrite": flow.may_overwrite,
        "started_by": {"key_kind": flow.identity.key_kind, "key_id": flow.identity.key_id}})
    webhooks.connection_saved(ctx(), saved, credentials["type"])
    return jsonify({"connectionId": saved["connection_id"], "providerConfigKey": saved["provider_config_key"]})


@bp.post("/api-auth/api-key/<path:key>")
def api_key(key: str):
    body = validate(ApiKeyBody, json_body(request))
    flow = start(key, "API_KEY")
    credentials = {"type": "API_KEY", "apiKey": body.apiKey}
    verification.verify(ctx().outbound, flow.provider, credentials, flow.connection_config)
    return save(flow, credentials)


@bp.post("/api-auth/basic/<path:key>")
def basic(key: str):
    body = validate(BasicBody, json_body(request))
    flow = start(key, "BASIC")
    credentials = {"type": "BASIC", "username": body.username, "password": body.password}
    verification.verify(ctx().outbound, flow.provider, credentials, flow.connection_config)
    return save(flow, credentials)


class TbaBody(Strict):
    token_id: Credential
    token_secret: Credential
    oauth_client_id_override: Override | None = None
    oauth_client_secret_override: Override | None = None


@bp.post("/auth/tba/<path:key>")
def tba(key: str):
    body = validate(TbaBody, json_body(request))
    flow = start(key, "TBA")
    credentials = {"type": "TBA", "token_id": body.token_id, "token_secret": body.token_secret}
    override = {k: v for k, v in (("client_id", body.oauth_client_id_override),
                                  ("client_secret", body.oauth_client_secret_override)) if v}
    if override:
        credentials["config_override"] = override
    verify_tba(flow, credentials)
    return save(flow, credentials)


def verify_tba(flow: Flow, credentials: dict) -> None:
    """Refuse an unusable account id before anything is sent, then verify with signed calls."""
    problem = signing.account_id_problem(flow.provider, flow.connection_config)
    if problem is not None:
        raise ApiError(problem, code="invalid_connection_config", status=400)
    consumer = {"consumer_key": flow.integration.get("client_id"),
                "consumer_secret": flow.integration.get("client_secret")}
    signer = signing.tba_signer({"credentials": credentials, "connection_config": flow.connection_config,
                                 "oauth1": consumer})
    verification.verify(ctx().outbound, flow.provider, credentials, flow.connection_config, signer)


@bp.post("/oauth2/auth/<path:key>")
def client_credentials(key: str):
    data = json_body(request)
    if isinstance(data, dict) and not data.get("client_id"):
        raise ApiError("Missing client_id", code="missing_client_id", status=400)
    if isinstance(data, dict) and not (data.get("client_secret") or data.get("client_private_key")):
        raise ApiError("Missing client_secret", code="missing_client_secret", status=400)
    body = dump(validate(ClientCredentialsBody, data))
    flow = start(key, "OAUTH2_CC")
    if not body.get("client_secret"):
        raise ApiError("Private-key client authentication is not supported yet", code="invalid_auth_mode", status=400)
    return save(flow, request_cc_token(flow, body))


def request_cc_token(flow: Flow, body: dict) -> dict:
    """Run the client-credentials grant; the OAUTH2_CC credentials to store."""
    provider, config = flow.provider, flow.connection_config
    values = oauth2.templates.template_values(config)
    fields = {"grant_type": "client_credentials",
              **oauth2.templates.fill_all(provider.get("token_params"), values)}
    scopes = oauth2.joined_scopes(flow.scopes, provider)
    if scopes:
        fields["scope"] = scopes
    try:
        data = oauth2.request_token(ctx().outbound, provider, oauth2.token_url(provider, "OAUTH2_CC", config),
                                    fields, body["client_id"], body["client_secret"])
    except oauth2.FlowError as exc:
        raise ApiError(exc.message, code="invalid_credentials", status=400) from None
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise ApiError("The token endpoint's answer has no access token", code="invalid_credentials", status=400)
    flow.connection_config.update(oauth2.metadata_from(data, provider.get("token_response_metadata")))
    credentials = {"type": "OAUTH2_CC", "token": token, "client_id": body["client_id"],
                   "client_secret": body["client_secret"], "raw": data}
    if provider.get("token_expires_in_ms") and not data.get("expires_in"):
        data = {**data, "expires_in": int(provider["token_expires_in_ms"]) / 1000}
    credentials["expires_at"] = oauth2.expiry(data, provider, default=oauth2.CC_DEFAULT_LIFETIME)
    if body.get("client_certificate"):
        credentials["client_certificate"] = body["client_certificate"]
    return credentials
