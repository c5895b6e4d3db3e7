"""Tokens obtained from the provider in exchange for the stored credentials, through the egress
layer: TWO_STEP (the catalogue's `token_url`, `token_params`, `token_headers`, `body_format`,
`token_request_method` and `token_response` say how) and BILL (Bill.com's Connect API login,
`POST {token_url}` with username, password, organization id and developer key, whose answer's
`sessionId` the calls carry with the developer key; a session ends after 35 minutes idle).

Multi-step exchanges (`additional_steps`) are not supported: such a provider is refused clearly.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from common import timestamps
from common.errors import ApiError
from services.auth import templates
from services.auth.provider_calls import Outbound

BASE64_CALL = re.compile(r"\$\{base64\(([^()]*)\)\}")
BILL_SESSION = timedelta(minutes=35)


def refused(message: str) -> ApiError:
    return ApiError(message, code="invalid_credentials", status=400)


def fill(template: str, values: dict, *, url: bool = False) -> str:
    """A catalogue template with `${base64(…)}` (whose argument is itself a template) filled too."""
    try:
        template = BASE64_CALL.sub(
            lambda m: base64.b64encode(templates.fill(m.group(1), values).encode()).decode(), template)
        return templates.fill(template, values, url=url)
    except templates.MissingValue as exc:
        raise ApiError(f"The value '{exc.name}' the provider's token request needs is missing",
                       code="invalid_credentials", status=400) from None
    except templates.UnsafeValue as exc:
        raise ApiError(f"The connection config value '{exc.name}' is not valid in a URL",
                       code="invalid_connection_config", status=400) from None


def _dig(data, path: str):
    for part in str(path).split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _expiry(data: dict, provider: dict) -> str | None:
    spec = provider.get("token_response") or {}
    value = _dig(data, spec["token_expiration"]) if spec.get("token_expiration") else None
    now = datetime.now(UTC)
    if value not in (None, ""):
        try:
            if spec.get("token_expiration_strategy") == "expireAt":
                moment = timestamps.parse_moment(value)
            else:
                moment = now + timedelta(seconds=float(value))
        except (ValueError, OverflowError, OSError, TypeError, timestamps.OutOfRange):
            raise refused("The token endpoint's answer has an expiry that cannot be read") from None
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if provider.get("token_expires_in_ms"):
        moment = now + timedelta(milliseconds=int(provider["token_expires_in_ms"]))
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def _answer(outbound: Outbound, method: str, url: str, headers: dict, body: bytes | None) -> dict:
    try:
        answer = outbound.send(method, url, headers=headers, body=body)
    except ApiError as exc:
        raise refused(f"The provider's token endpoint could not be reached ({exc.code})") from None
    if not answer.ok:
        raise refused(f"The provider refused the credentials (status {answer.status})")
    data = answer.data()
    if data is None:
        raise refused("The token endpoint's answer is not JSON")
    return data


def two_step(outbound: Outbound, provider: dict, credentials: dict, connection_config: dict) -> dict:
    """The TWO_STEP credentials to store: the given fields, `token`, `expires_at`, `raw`."""
    if provider.get("additional_steps"):
        raise ApiError("Multi-step token exchanges (additional_steps) are not supported yet",
                       code="invalid_auth_mode", status=400)
    values = templates.template_values(connection_config, credentials)
    url = fill(str(provider.get("token_url") or ""), values, url=True)
    if not url.startswith(("http://", "https://")):
        raise ApiError("The provider has no token URL", code="invalid_auth_mode", status=400)
    method = str(provider.get("token_request_method") or "POST").upper()
    headers = {k: fill(str(v), values) for k, v in (provider.get("token_headers") or {}).items()}
    fields = {k: fill(v, values) if isinstance(v, str) else v for k, v in (provider.get("token_params") or {}).items()}
    body = None
    if method != "GET":
        if provider.get("body_format") == "json":
            body = json.dumps(fields).encode()
            headers.setdefault("content-type", "application/json")
        else:
            body = urlencode({k: str(v) for k, v in fields.items()}).encode()
            headers.setdefault("content-type", "application/x-www-form-urlencoded")
    data = _answer(outbound, method, url, headers, body)
    spec = provider.get("token_response") or {}
    token = _dig(data, spec.get("token") or "access_token")
    if not isinstance(token, str) or not token:
        raise refused("The token endpoint's answer has no token")
    fresh = {**{k: v for k, v in credentials.items() if k not in ("token", "expires_at", "raw", "refresh_token")},
             "type": "TWO_STEP", "token": token, "raw": data}
    if spec.get("refresh_token") and isinstance(_dig(data, spec["refresh_token"]), str):
        fresh["refresh_token"] = _dig(data, spec["refresh_token"])
    expires_at = _expiry(data, provider)
    if expires_at:
        fresh["expires_at"] = expires_at
    return fresh


def bill_login(outbound: Outbound, provider: dict, credentials: dict, connection_config: dict) -> dict:
    """The BILL credentials to store: the given four fields, `session_id`, `user_id`, `expires_at`."""
    values = templates.template_values(connection_config, credentials)
    url = fill(str(provider.get("token_url") or ""), values, url=True)
    if not url.startswith(("http://", "https://")):
        raise ApiError("The provider has no login URL", code="invalid_auth_mode", status=400)
    login = {"username": credentials["username"], "password": credentials["password"],
             "organizationId": credentials["organization_id"], "devKey": credentials["dev_key"]}
    data = _answer(outbound, "POST", url, {"content-type": "application/json"}, json.dumps(login).encode())
    session = data.get("sessionId")
    if not isinstance(session, str) or not session:
        raise refused("Bill's login answer has no sessionId")
    expires_at = (datetime.now(UTC) + BILL_SESSION).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fresh = {"type": "BILL", **{k: credentials[k] for k in ("username", "password", "organization_id", "dev_key")},
             "session_id": session, "expires_at": expires_at}
    if isinstance(data.get("userId"), str):
        fresh["user_id"] = data["userId"]
    return fresh
