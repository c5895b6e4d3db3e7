"""OAuth 1.0a (RFC 5849) as the provider catalogue describes it: the temporary (request) token,
the authorization URL and the access token exchange. Requests are signed by authlib's client
(`ClientAuth`) and sent through `services.auth.provider_calls` (the egress layer). No Flask here.

Catalogue keys used: `request_url`, `request_params`, `request_http_method` (default POST),
`authorization_url`, `authorization_params`, `token_url`, `token_http_method` (default POST),
`signature_method` (HMAC-SHA1 default, PLAINTEXT; RSA-SHA1 needs a private key: not offered)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT, ClientAuth

from services.auth import oauth2, templates
from services.auth.provider_calls import Answer, Outbound

SIGNATURE_METHODS = {SIGNATURE_HMAC_SHA1, SIGNATURE_PLAINTEXT}
FORM = "application/x-www-form-urlencoded"


def signature_method(provider: dict) -> str:
    method = str(provider.get("signature_method") or SIGNATURE_HMAC_SHA1).upper()
    if method not in SIGNATURE_METHODS:
        raise oauth2.flow_error("provider_config_err", f"The OAuth 1.0a signature method {method} is not supported")
    return method


def _url(provider: dict, name: str, connection_config: dict) -> str:
    template = provider.get(name)
    if isinstance(template, dict):
        template = template.get("OAUTH1")
    if not isinstance(template, str) or not template:
        raise oauth2.flow_error("provider_config_err", f"The provider has no {name}")
    return oauth2.fill_url(template, connection_config)


def _signed_call(outbound: Outbound, method: str, url: str, auth: ClientAuth, params: dict[str, str]) -> Answer:
    """Send a request signed in the Authorization header; extra params go in the body (POST) or query."""
    method = method.upper()
    headers: dict[str, str] = {}
    body: bytes | None = None
    if method in ("POST", "PUT"):
        headers["Content-Type"] = FORM
        signed_url, signed_headers, signed_body = auth.sign(method, url, headers, urlencode(params))
        body = (signed_body if isinstance(signed_body, bytes) else str(signed_body or "").encode()) or b""
    else:
        if params:
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
            url = urlunsplit(parts._replace(query=urlencode(query)))
        signed_url, signed_headers, _ = auth.sign(method, url, headers, b"")
    signed_headers = {str(k): str(v) for k, v in signed_headers.items()}
    signed_headers["Accept"] = "application/x-www-form-urlencoded, application/json"
    return outbound.send(method, signed_url, headers=signed_headers, body=body)


def _token_pair(answer: Answer, what: str) -> dict[str, Any]:
    data = answer.data()
    if not answer.ok or data is None or not data.get("oauth_token") or not data.get("oauth_token_secret"):
        problem = (data or {}).get("error") or (data or {}).get("oauth_problem")
        detail = f": {str(problem)[:100]}" if isinstance(problem, str) and problem else ""
        raise oauth2.flow_error("token_err", f"The provider's {what} endpoint refused the request "
                                             f"(status {answer.status}){detail}")
    return data


def request_token(outbound: Outbound, provider: dict, *, consumer_key: str, consumer_secret: str,
                  callback: str, connection_config: dict) -> dict[str, Any]:
    """Temporary credentials: {oauth_token, oauth_token_secret, …} or `token_err`."""
    url = _url(provider, "request_url", connection_config)
    params = templates.fill_all(provider.get("request_params"), templates.template_values(connection_config))
    auth = ClientAuth(consumer_key, consumer_secret, redirect_uri=callback, signature_method=signature_method(provider))
    answer = _signed_call(outbound, str(provider.get("request_http_method") or "POST"), url, auth, params)
    return _token_pair(answer, "request token")


def authorization_url(provider: dict, *, oauth_token: str, scopes: str, connection_config: dict,
                      extra: dict[str, str]) -> str:
    """Where the popup is sent so that the end user authorizes the request token."""
    base = urlsplit(_url(provider, "authorization_url", connection_config))
    params: dict[str, str] = dict(parse_qsl(base.query, keep_blank_values=True))
    try:
        params.update(templates.fill_all(provider.get("authorization_params"),
                                         templates.template_values(connection_config)))
    except templates.MissingValue as exc:
        raise oauth2.flow_error("url_param_err", f"Missing connection config value '{exc.name}'") from None
    if scopes:
        params["scope"] = scopes
    for key, value in extra.items():
        if value == oauth2.UNDEFINED:
            params.pop(key, None)
        else:
            params[key] = value
    params["oauth_token"] = oauth_token
    return urlunsplit(base._replace(query=urlencode(params)))


def access_token(outbound: Outbound, provider: dict, *, consumer_key: str, consumer_secret: str,
                 oauth_token: str, oauth_token_secret: str, verifier: str, connection_config: dict) -> dict[str, Any]:
    """Token credentials for an authorized request token: {oauth_token, oauth_token_secret, …} or `token_err`."""
    url = _url(provider, "token_url", connection_config)
    auth = ClientAuth(consumer_key, consumer_secret, token=oauth_token, token_secret=oauth_token_secret,
                      verifier=verifier, signature_method=signature_method(provider))
    answer = _signed_call(outbound, str(provider.get("token_http_method") or "POST"), url, auth, {})
    return _token_pair(answer, "access token")


def oauth1_credentials(data: dict) -> dict[str, Any]:
    """Stored OAUTH1 credentials (never expiring, never refreshed)."""
    return {"type": "OAUTH1", "oauth_token": str(data["oauth_token"]),
            "oauth_token_secret": str(data["oauth_token_secret"]), "raw": dict(data)}
