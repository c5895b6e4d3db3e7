"""Test captured API keys and basic credentials against the provider's verification endpoint
(`proxy.verification` in the catalogue), through the egress layer, before they are saved."""

from __future__ import annotations

import base64
from urllib.parse import urlencode, urlsplit

from common.errors import ApiError
from services.auth import templates
from services.auth.provider_calls import Outbound


def test_failed(message: str) -> ApiError:
    return ApiError(message, code="connection_test_failed", status=400)


def request_parts(provider: dict, credentials: dict, connection_config: dict, endpoint: str) -> tuple[str, dict]:
    """(URL, headers) of one verification call."""
    proxy = provider.get("proxy") or {}
    check = proxy.get("verification") or {}
    values = templates.template_values(connection_config, credentials)
    try:
        base = templates.fill(check.get("base_url_override") or proxy.get("base_url") or "", values, url=True)
        headers = templates.fill_all(proxy.get("headers"), values)
        headers.update(templates.fill_all(check.get("headers"), values))
        query = templates.fill_all(proxy.get("query"), values)
    except (templates.MissingValue, templates.UnsafeValue) as exc:
        raise test_failed(f"The connection config value '{exc.name}' is missing or invalid") from None
    if not urlsplit(base).scheme:
        raise test_failed("The provider has no base URL to verify the credentials against")
    if credentials.get("type") == "BASIC":
        pair = f"{credentials.get('username', '')}:{credentials.get('password', '')}".encode()
        headers.setdefault("authorization", "Basic " + base64.b64encode(pair).decode())
    url = base.rstrip("/") + "/" + endpoint.lstrip("/")
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    return url, headers


def verify(outbound: Outbound, provider: dict, credentials: dict, connection_config: dict, signer=None) -> None:
    """Raise `connection_test_failed` unless one verification endpoint accepts the credentials.

    `signer(method, url, headers, body)` gives the headers that sign a call (OAuth 1.0a, TBA)."""
    check = (provider.get("proxy") or {}).get("verification")
    if not check:
        return
    endpoints = check.get("endpoints") or ([check["endpoint"]] if check.get("endpoint") else [])
    method = str(check.get("method") or "GET").upper()
    status = None
    for endpoint in endpoints:
        url, headers = request_parts(provider, credentials, connection_config, endpoint)
        if signer is not None:
            headers.update(signer(method, url, headers, None))
        try:
            answer = outbound.send(method, url, headers=headers)
        except ApiError as exc:
            raise test_failed(f"The provider could not be reached to verify the credentials ({exc.code})") from None
        if answer.ok:
            return
        status = answer.status
    raise test_failed(f"The provider refused the credentials (status {status})")
