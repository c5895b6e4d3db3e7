"""Builders for the API tests: a client of the gateway, and records made through the public API
with sensible defaults that each test overrides where it matters."""

from __future__ import annotations

import re
import uuid
from typing import Any

import requests

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OMIT = object()  # pass as an override to leave a field out of the request body


class Gateway(requests.Session):
    """A session bound to the gateway: paths starting with / are sent to its base URL."""

    def __init__(self, base_url: str, key: str | None):
        super().__init__()
        self.trust_env = False
        self.base_url = base_url
        if key is not None:
            self.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        return super().request(method, self.base_url + url if url.startswith("/") else url, *args, **kwargs)


def gateway(system, key: str | None = "dev") -> Gateway:
    """A client of the running system's gateway; key "dev", "prod", None (no header) or a literal."""
    literal = {"dev": system.dev_key, "prod": system.prod_key}.get(key, key) if key else None
    return Gateway(system.url, literal)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _body(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **overrides}
    return {k: v for k, v in merged.items() if v is not OMIT}


def oauth_app(**overrides) -> dict[str, Any]:
    return _body({"type": "OAUTH2", "client_id": "fake-client-id", "client_secret": "fake-client-secret",
                  "scopes": "repo,user"}, overrides)


def integration_body(**overrides) -> dict[str, Any]:
    return _body({"unique_key": unique("github"), "provider": "github", "credentials": oauth_app()}, overrides)


def make_integration(api: Gateway, **overrides) -> dict[str, Any]:
    """Create an integration (a GitHub OAuth app by default) and return its public record."""
    response = api.post("/integrations", json=integration_body(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def oauth2_tokens(**overrides) -> dict[str, Any]:
    return _body({"type": "OAUTH2", "access_token": unique("gho"), "refresh_token": unique("ghr"),
                  "expires_at": "2099-01-01T00:00:00.000Z"}, overrides)


def connection_body(integration_key: str, **overrides) -> dict[str, Any]:
    return _body({"provider_config_key": integration_key, "connection_id": unique("conn"),
                  "credentials": oauth2_tokens()}, overrides)


def make_connection(api: Gateway, integration_key: str, **overrides) -> dict[str, Any]:
    """Import a connection (OAuth2 tokens by default) and return the full record."""
    response = api.post("/connections", json=connection_body(integration_key, **overrides))
    assert response.status_code == 201, response.text
    return response.json()


def get_connection(api: Gateway, integration_key: str, connection_id: str, **params) -> requests.Response:
    return api.get(f"/connections/{connection_id}", params={"provider_config_key": integration_key, **params})


def list_connections(api: Gateway, **params) -> list[dict[str, Any]]:
    response = api.get("/connections", params=params)
    assert response.status_code == 200, response.text
    return response.json()["connections"]
