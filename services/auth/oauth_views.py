"""The OAuth 2 popup flow: `GET /oauth/connect/:key` sends the popup to the provider, and
`GET /oauth/callback` exchanges the code, saves the connection and tells the SDK.

Every failure answers with the HTML result page (400) and, when the SDK's websocket is known,
an error message of the documented type; never a stack trace, never a secret."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request

from common import popup
from common.errors import ApiError
from common.httpapp import current_identity
from services.auth import oauth1, oauth2, webhooks
from services.auth.context import ctx
from services.auth.flow import Flow, begin, read_query

log = logging.getLogger("authport.auth.oauth")
bp = Blueprint("oauth", __name__)
OAUTH_SESSION_TTL = timedelta(minutes=15)
WS_TYPES = {"unknown_provider_config": "provider_config_err", "unknown_provider_template": "provider_config_err",
            "invalid_auth_mode": "auth_mode_err", "unknown_state": "state_err", "expired_state": "state_err"}


def failure(exc: ApiError, key: str | None, connection_id: str | None, ws_client_id: str | None) -> Response:
    error_type = WS_TYPES.get(exc.code, exc.code)
    description = exc.message or error_type
    body, headers = popup.page(False, error_type, description)
    headers.update(popup.ws_header(ws_client_id, popup.error_message(key, connection_id, error_type, description)))
    return Response(body, status=400, headers=headers)


def unexpected(where: str) -> ApiError:
    request_id = uuid.uuid4().hex
    log.exception("unexpected failure in %s request_id=%s", where, request_id)
    return ApiError(f"An unexpected error occurred (request id {request_id})", code="unknown_err", status=500)


@bp.get("/oauth/connect/<path:key>")
def connect(key: str):
    query: dict = {"connection_id": None, "ws_client_id": request.args.get("ws_client_id")}
    try:
        query = read_query(request.args)
        flow = begin(ctx(), current_identity(), key, query)
        return redirect(authorize(flow), 302)
    except ApiError as exc:
        return failure(exc, key, query.get("connection_id"), query.get("ws_client_id"))
    except Exception:  # noqa: BLE001 - the popup must still get its page and the SDK its message
        return failure(unexpected("oauth connect"), key, query.get("connection_id"), query.get("ws_client_id"))


def authorize(flow: Flow) -> str:
    """Record the OAuth session and return the provider's authorization URL."""
    if flow.auth_mode == "OAUTH1":
        return authorize_oauth1(flow)
    if flow.auth_mode != "OAUTH2":
        raise oauth2.flow_error("auth_mode_err", f"The popup flow does not handle the auth mode {flow.auth_mode}")
    grant = (flow.provider.get("token_params") or {}).get("grant_type")
    if grant not in (None, "authorization_code"):
        raise oauth2.flow_error("grant_type_err", f"The provider's grant type {grant} has no popup flow")
    client_id, _ = client_pair(flow)
    flow.connection_id = flow.connection_id or str(uuid.uuid4())
    state, verifier = secrets.token_urlsafe(32), secrets.token_hex(24)
    redirect_uri = ctx().settings.callback_url
    url = oauth2.authorization_url(
        flow.provider, client_id=client_id, redirect_uri=redirect_uri, state=state, verifier=verifier,
        scopes=oauth2.joined_scopes(flow.scopes, flow.provider), connection_config=flow.connection_config,
        extra=flow.authorization_params, user_scope=flow.user_scope)
    save_session(flow, state, redirect_uri, {"code_verifier": verifier})
    return url


def save_session(flow: Flow, state: str, redirect_uri: str, flow_secrets: dict) -> None:
    """Record the OAuth session the callback will resume (secrets kept encrypted by the store)."""
    overrides = {k: v for k, v in flow.credentials.items() if k.startswith("oauth_") and k.endswith("_override")}
    ctx().store.create_oauth_session({
        "environment_id": flow.identity.environment_id, "state": state,
        "provider_config_key": flow.provider_config_key, "provider": flow.integration["provider"],
        "connection_id": flow.connection_id, "connect_session_id": flow.session_id,
        "connection_config": flow.connection_config, "ws_client_id": flow.ws_client_id,
        "redirect_uri": redirect_uri, "ttl_seconds": int(OAUTH_SESSION_TTL.total_seconds()),
        "may_overwrite": flow.may_overwrite,
        "secrets": {**flow_secrets, **overrides},
    })


def client_pair(flow: Flow) -> tuple[str, str]:
    client_id = flow.credentials.get("oauth_client_id_override") or flow.integration.get("client_id")
    client_secret = flow.credentials.get("oauth_client_secret_override") or flow.integration.get("client_secret")
    if not client_id or not client_secret:
        raise oauth2.flow_error("provider_config_err", "The integration has no OAuth client id and secret")
    return client_id, client_secret


def authorize_oauth1(flow: Flow) -> str:
    """OAuth 1.0a: get a request token (callback carries the state), keep its secret in the OAuth
    session, and return the provider's authorization URL for it."""
    consumer_key, consumer_secret = client_pair(flow)
    flow.connection_id = flow.connection_id or str(uuid.uuid4())
    state = secrets.token_urlsafe(32)
    redirect_uri = ctx().settings.callback_url
    separator = "&" if "?" in redirect_uri else "?"
    temporary = oauth1.request_token(
        ctx().outbound, flow.provider, consumer_key=consumer_key, consumer_secret=consumer_secret,
        callback=f"{redirect_uri}{separator}{urlencode({'state': state})}", connection_config=flow.connection_config)
    url = oauth1.authorization_url(
        flow.provider, oauth_token=temporary["oauth_token"], scopes=oauth2.joined_scopes(flow.scopes, flow.provider),
        connection_config=flow.connection_config, extra=flow.authorization_params)
    save_session(flow, state, redirect_uri, {"request_token": temporary["oauth_token"],
                                             "request_token_secret": temporary["oauth_token_secret"]})
    return url


@bp.get("/oauth/callback")
def callback():
    state = request.args.get("state", "")
    try:
        session = ctx().store.consume_oauth_session(state)
    except ApiError as exc:
        known = exc.payload if isinstance(exc.payload, dict) else {}
        if exc.status >= 500:
            exc = ApiError("The flow's state could not be checked", code="unknown_err", status=500)
        elif exc.code == "unknown_state":
            exc = ApiError("Invalid or already used state: start the flow again", code="state_err")
        return failure(exc, known.get("provider_config_key"), known.get("connection_id"), known.get("ws_client_id"))
    key, connection_id = session["provider_config_key"], session["connection_id"]
    auth_mode = (ctx().catalogue.get(session["provider"]) or {}).get("auth_mode") or "OAUTH2"
    try:
        saved = finish_oauth1(session) if auth_mode == "OAUTH1" else finish(session)
    except ApiError as exc:
        webhooks.flow_failed(ctx(), session, exc)
        return failure(exc, key, connection_id, session.get("ws_client_id"))
    except Exception:  # noqa: BLE001 - as above
        return failure(unexpected("oauth callback"), key, connection_id, session.get("ws_client_id"))
    webhooks.connection_saved(ctx(), saved, auth_mode)
    body, headers = popup.page(True)
    headers.update(popup.ws_header(session.get("ws_client_id"), popup.success_message(key, connection_id)))
    return Response(body, status=200, headers=headers)


def finish(session: dict) -> dict:
    """Exchange the callback's code for tokens and save the connection."""
    provider = ctx().catalogue.get(session["provider"]) or {}
    args = request.args
    code = args.get(provider.get("authorization_code_param_in_callback") or "code")
    if args.get("error") or not code:
        reason = (args.get("error") or "no authorization code")[:100]
        detail = (args.get("error_description") or "")[:300]
        raise oauth2.flow_error("callback_err", f"The provider did not grant access: {reason}"
                                                + (f" ({detail})" if detail else ""))
    secrets_ = session["secrets"]
    integration = session["integration"]
    client_id = secrets_.get("oauth_client_id_override") or integration.get("client_id")
    client_secret = secrets_.get("oauth_client_secret_override") or integration.get("client_secret")
    if not client_id or not client_secret:
        raise oauth2.flow_error("provider_config_err", "The integration has no OAuth client id and secret")
    config = dict(session["connection_config"])
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": session["redirect_uri"]}
    fields.update(oauth2.templates.fill_all(provider.get("token_params"), oauth2.templates.template_values(config)))
    fields["grant_type"] = "authorization_code"
    if not provider.get("disable_pkce"):
        fields["code_verifier"] = secrets_["code_verifier"]
    url = oauth2.token_url(provider, "OAUTH2", config)
    data = oauth2.request_token(ctx().outbound, provider, url, fields, client_id, client_secret)
    credentials = oauth2.oauth2_credentials(data, provider)
    if secrets_.get("oauth_client_id_override"):
        credentials["config_override"] = {"client_id": client_id, "client_secret": client_secret}
    if secrets_.get("oauth_refresh_token_override"):
        credentials["refresh_token"] = secrets_["oauth_refresh_token_override"]
        config["overrideTokenRefresh"] = True
    config.update(oauth2.metadata_from(data, provider.get("token_response_metadata")))
    config.update(oauth2.metadata_from(args.to_dict(), provider.get("redirect_uri_metadata")))
    return ctx().store.save_connection({
        "environment_id": session["environment_id"], "provider_config_key": session["provider_config_key"],
        "connection_id": session["connection_id"], "connect_session_id": session.get("connect_session_id"),
        "credentials": credentials, "connection_config": config, "may_overwrite": session.get("may_overwrite")})


def finish_oauth1(session: dict) -> dict:
    """OAuth 1.0a: exchange the authorized request token (and its verifier) for the access token."""
    provider = ctx().catalogue.get(session["provider"]) or {}
    args = request.args
    secrets_ = session["secrets"]
    token, verifier = args.get("oauth_token"), args.get("oauth_verifier")
    if args.get("error") or not token or not verifier:
        reason = args.get("error") or ("access_denied" if args.get("denied") else "no oauth_token or oauth_verifier")
        raise oauth2.flow_error("callback_err", f"The provider did not grant access: {str(reason)[:100]}")
    if not secrets.compare_digest(token, secrets_.get("request_token") or ""):
        raise oauth2.flow_error("callback_err", "The callback's oauth_token is not the flow's request token")
    integration = session["integration"]
    consumer_key = secrets_.get("oauth_client_id_override") or integration.get("client_id")
    consumer_secret = secrets_.get("oauth_client_secret_override") or integration.get("client_secret")
    if not consumer_key or not consumer_secret:
        raise oauth2.flow_error("provider_config_err", "The integration has no OAuth client id and secret")
    config = dict(session["connection_config"])
    data = oauth1.access_token(ctx().outbound, provider, consumer_key=consumer_key, consumer_secret=consumer_secret,
                               oauth_token=token, oauth_token_secret=secrets_["request_token_secret"],
                               verifier=verifier, connection_config=config)
    credentials = oauth1.oauth1_credentials(data)
    if secrets_.get("oauth_client_id_override"):
        credentials["config_override"] = {"client_id": consumer_key, "client_secret": consumer_secret}
    config.update(oauth2.metadata_from(data, provider.get("token_response_metadata")))
    return ctx().store.save_connection({
        "environment_id": session["environment_id"], "provider_config_key": session["provider_config_key"],
        "connection_id": session["connection_id"], "connect_session_id": session.get("connect_session_id"),
        "credentials": credentials, "connection_config": config, "may_overwrite": session.get("may_overwrite")})
