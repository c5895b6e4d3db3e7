"""Builders for the proxy tests: an integration and a connection of a test provider, and a
proxied call sent through the gateway with the headers the SDK would send."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

from tests.api.builders import Gateway, gateway, unique

OAUTH2 = {"type": "OAUTH2", "access_token": "tok-oauth-secret", "expires_at": "2099-01-01T00:00:00.000Z"}


def connect(api: Gateway, provider: str, credentials: dict, **extra) -> tuple[str, str]:
    """A new integration of `provider` with one connection; returns (integration key, connection id)."""
    key, connection_id = unique(provider), unique("conn")
    response = api.post("/integrations", json={"unique_key": key, "provider": provider})
    assert response.status_code == 200, response.text
    body = {"provider_config_key": key, "connection_id": connection_id, "credentials": credentials, **extra}
    response = api.post("/connections", json=body)
    assert response.status_code == 201, response.text
    return key, connection_id


def proxied(api: Gateway, method: str, endpoint: str, key: str, connection_id: str, *, headers=None,
            **kwargs) -> requests.Response:
    sent = {"Connection-Id": connection_id, "Provider-Config-Key": key, "Base-Url-Override": "",
            "Nango-Activity-Log-Id": "", "Nango-Is-Sync": "false", "Nango-Is-Dry-Run": "false", **(headers or {})}
    return api.request(method, "/proxy" + endpoint, headers=sent, **kwargs)


def echo(response: requests.Response) -> dict[str, Any]:
    """What the echo upstream received, from its answer."""
    assert response.status_code == 200, response.text
    data = response.json()
    data["body"] = base64.b64decode(data["body"])
    data["headers"] = {k.lower(): v for k, v in data["headers"].items()}
    return data


def error(response: requests.Response) -> dict[str, Any]:
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    return body["error"]


__all__ = ["connect", "proxied", "echo", "error", "gateway", "unique", "OAUTH2"]
