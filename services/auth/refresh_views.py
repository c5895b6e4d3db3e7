"""Token refresh, asked for by the store (which holds the connection's lock and saves the result):
auth only performs the exchange with the provider, through the egress layer."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from common.errors import ApiError
from services.auth import aws_sts, oauth2, token_modes
from services.auth.context import ctx

bp = Blueprint("refresh", __name__, url_prefix="/internal")


def external_error(message: str) -> ApiError:
    return ApiError(message, code="refresh_token_external_error", status=400)


@bp.post("/refresh")
def refresh():
    """Body: {provider, client_id, client_secret, credentials, connection_config}; the new credentials."""
    body = request.get_json(silent=True) or {}
    provider = ctx().catalogue.get(str(body.get("provider")))
    credentials = body.get("credentials") or {}
    if provider is None:
        raise external_error("The connection's provider is not in the catalogue")
    try:
        if credentials.get("type") == "AWS_SIGV4":
            return jsonify({"credentials": assume_again(provider, credentials, body)})
        if credentials.get("type") in token_modes.MODES:
            return jsonify({"credentials": renew_token(provider, credentials, body)})
        if credentials.get("type") == "OAUTH2_CC":
            return jsonify({"credentials": client_credentials(provider, credentials, body)})
        return jsonify({"credentials": refresh_oauth2(provider, credentials, body)})
    except oauth2.FlowError as exc:
        raise external_error(exc.message) from None


def refresh_oauth2(provider: dict, credentials: dict, body: dict) -> dict:
    refresh_token = credentials.get("refresh_token")
    if not refresh_token:
        raise external_error("The connection has no refresh token")
    override = credentials.get("config_override") or {}
    client_id = override.get("client_id") or body.get("client_id")
    client_secret = override.get("client_secret") or body.get("client_secret")
    if not client_id or not client_secret:
        raise external_error("The integration has no OAuth client id and secret")
    config = body.get("connection_config") or {}
    params = provider.get("refresh_params") or provider.get("token_params") or {}
    fields = {**oauth2.templates.fill_all(params, oauth2.templates.template_values(config)),
              "grant_type": "refresh_token", "refresh_token": refresh_token}
    data = oauth2.request_token(ctx().outbound, provider, oauth2.token_url(provider, "OAUTH2", config), fields,
                                client_id, client_secret)
    fresh = oauth2.oauth2_credentials(data, provider)
    fresh.setdefault("refresh_token", refresh_token)  # providers that do not rotate send none back
    if override:
        fresh["config_override"] = override
    return fresh


def client_credentials(provider: dict, credentials: dict, body: dict) -> dict:
    config = body.get("connection_config") or {}
    fields = {"grant_type": "client_credentials",
              **oauth2.templates.fill_all(provider.get("token_params"), oauth2.templates.template_values(config))}
    if body.get("scopes"):
        fields["scope"] = oauth2.joined_scopes(body["scopes"], provider)
    data = oauth2.request_token(ctx().outbound, provider, oauth2.token_url(provider, "OAUTH2_CC", config), fields,
                                credentials.get("client_id", ""), credentials.get("client_secret", ""))
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise external_error("The token endpoint's answer has no access token")
    fresh = {**{k: v for k, v in credentials.items() if k not in ("raw", "expires_at")}, "token": token, "raw": data}
    fresh["expires_at"] = oauth2.expiry(data, provider, default=oauth2.CC_DEFAULT_LIFETIME)
    return fresh


def renew_token(provider: dict, credentials: dict, body: dict) -> dict:
    """A new token made from the stored credentials (JWT, TWO_STEP, SIGNATURE, BILL)."""
    mode = credentials["type"]
    try:
        return token_modes.make(ctx().outbound, provider, mode, token_modes.given_fields(credentials, mode),
                                body.get("connection_config") or {})
    except ApiError as exc:
        raise external_error(exc.message or exc.code) from None


def assume_again(provider: dict, credentials: dict, body: dict) -> dict:
    """New temporary AWS keys for the connection's role."""
    fields = {k: credentials[k] for k in ("role_arn", "region") if credentials.get(k)}
    try:
        return aws_sts.assume_role(ctx().outbound, provider, fields, body.get("client_id"), body.get("client_secret"))
    except ApiError as exc:
        raise external_error(exc.message or exc.code) from None
