"""OAuth 2 as the provider catalogue describes it: the authorization URL, token requests
(authorization code, client credentials, refresh) and turning their answers into credentials.
No Flask here; every token request goes through `services.auth.provider_calls`."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from common import timestamps
from common.errors import ApiError
from services.auth import templates
from services.auth.provider_calls import Outbound

UNDEFINED = "undefined"  # authorization_params[x]=undefined removes x
CC_DEFAULT_LIFETIME = timedelta(minutes=55)


class FlowError(ApiError):
    """A failure of a flow, with the websocket error type the frontend SDK receives."""

    status = 400
    code = "unknown_err"


def flow_error(error_type: str, message: str) -> FlowError:
    return FlowError(message, code=error_type)


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def fill_url(template: str, connection_config: dict) -> str:
    """A catalogue URL filled from the connection config; `url_param_err` when something is missing."""
    try:
        return templates.fill(template, templates.template_values(connection_config), url=True)
    except templates.MissingValue as exc:
        raise flow_error("url_param_err", f"Missing connection config value '{exc.name}' needed by the provider's "
                                          "URLs (pass it as params[...] or in the session's defaults)") from None
    except templates.UnsafeValue as exc:
        raise flow_error("url_param_err", f"The connection config value '{exc.name}' is not a valid host or "
                                          "path part") from None


def joined_scopes(scopes: str | list | None, provider: dict) -> str:
    """Scopes (stored comma-separated, or a list) joined with the provider's separator."""
    items = scopes if isinstance(scopes, list) else (scopes or "").split(",")
    return (provider.get("scope_separator") or " ").join(s.strip() for s in items if s and s.strip())


def authorization_url(provider: dict, *, client_id: str, redirect_uri: str, state: str, verifier: str | None,
                      scopes: str, connection_config: dict, extra: dict[str, str],
                      user_scope: str | None = None) -> str:
    """Where the popup is sent to ask the end user's consent."""
    base = urlsplit(fill_url(provider["authorization_url"], connection_config))
    params: dict[str, str] = dict(parse_qsl(base.query, keep_blank_values=True))
    params.update(response_type="code", client_id=client_id, redirect_uri=redirect_uri)
    if scopes:
        params["scope"] = scopes
    params["state"] = state
    values = templates.template_values(connection_config)
    try:
        params.update(templates.fill_all(provider.get("authorization_params"), values))
    except templates.MissingValue as exc:
        raise flow_error("url_param_err", f"Missing connection config value '{exc.name}'") from None
    if verifier is not None and not provider.get("disable_pkce"):
        params.update(code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    if user_scope:
        params["user_scope"] = user_scope
    for key, value in extra.items():
        if value == UNDEFINED:
            params.pop(key, None)
        else:
            params[key] = value
    return urlunsplit(base._replace(query=urlencode(params)))


def token_url(provider: dict, mode: str, connection_config: dict) -> str:
    url = provider.get("token_url")
    if isinstance(url, dict):
        url = url.get(mode)
    if not isinstance(url, str) or not url:
        raise flow_error("provider_config_err", "The provider has no token URL")
    return fill_url(url, connection_config)


def client_authentication(provider: dict, client_id: str, client_secret: str) -> tuple[dict, dict]:
    """(body fields, headers) that authenticate the OAuth client, as the provider wants it."""
    if provider.get("authorization_method") == "header" or provider.get("token_request_auth_method") == "basic":
        pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        return {}, {"Authorization": f"Basic {pair}"}
    return {"client_id": client_id, "client_secret": client_secret}, {}


def request_token(outbound: Outbound, provider: dict, url: str, fields: dict[str, str], client_id: str,
                  client_secret: str) -> dict:
    """POST a token request; the provider's answer as a mapping, or `token_err`."""
    auth_fields, headers = client_authentication(provider, client_id, client_secret)
    answer = outbound.post_form(url, {**fields, **auth_fields}, headers=headers,
                                as_json=provider.get("body_format") == "json")
    data = answer.data()
    if not answer.ok or data is None or data.get("error"):
        reason = (data or {}).get("error") if isinstance((data or {}).get("error"), str) else None
        detail = f": {reason[:100]}" if reason else ""
        raise flow_error("token_err", f"The provider's token endpoint refused the request (status {answer.status}"
                                      f"){detail}")
    return data


def expiry(data: dict, provider: dict, default: timedelta | None = None) -> str | None:
    """When the token expires (ISO-8601 UTC), from `expires_at` or `expires_in`.

    The token is issued already, so a provider's value beyond what can be stored (`expires_in:
    1e20`, a date past year 9999) is clamped into timestamps' range rather than refused.
    """
    now = datetime.now(UTC)
    moment = None
    if data.get("expires_at") not in (None, ""):
        try:
            moment = timestamps.parse_moment(data["expires_at"])
        except timestamps.OutOfRange as exc:
            moment = exc.nearest
        except (TypeError, ValueError, OverflowError, OSError):
            moment = None
    elif data.get("expires_in") not in (None, ""):
        try:
            seconds = float(data["expires_in"])
        except (TypeError, ValueError, OverflowError):
            seconds = None
        if seconds is not None:
            unit = 1000.0 if provider.get("expires_in_unit") == "milliseconds" else 1.0
            moment = timestamps.after(now, seconds / unit)
    if moment is None and default is not None:
        moment = now + default
    if moment is None:
        return None
    return timestamps.iso_z(moment)


def _at_path(data: dict, path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    return current


def oauth2_credentials(data: dict, provider: dict) -> dict[str, Any]:
    """Stored OAUTH2 credentials from a token answer; `token_err` without an access token."""
    path = provider.get("alternate_access_token_response_path")
    access = _at_path(data, path) if path else data.get("access_token")
    if not isinstance(access, str) or not access:
        raise flow_error("token_err", "The provider's token answer has no access token")
    credentials: dict[str, Any] = {"type": "OAUTH2", "access_token": access}
    if isinstance(data.get("refresh_token"), str) and data["refresh_token"]:
        credentials["refresh_token"] = data["refresh_token"]
    expires_at = expiry(data, provider)
    if expires_at:
        credentials["expires_at"] = expires_at
    credentials["raw"] = data
    return credentials


def metadata_from(data: dict, keys: list | None) -> dict:
    """The whitelisted keys of a token answer or callback query, copied into connection_config."""
    return {key: data[key] for key in (keys or []) if isinstance(key, str) and data.get(key) not in (None, "")}
