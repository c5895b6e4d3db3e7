"""The store asking auth to refresh a connection's credentials (the store holds the lock and saves)."""

from __future__ import annotations

from common.internal import ServiceClient, error_from


class RefreshClient(ServiceClient):
    def refresh(self, *, provider: str, credentials: dict, connection_config: dict, client_id: str | None,
                client_secret: str | None, scopes: str | None, integration_config: dict | None = None) -> dict:
        """The new credentials; raises the provider's refusal as `refresh_token_external_error`."""
        status, body = self.call("POST", "/internal/refresh", {
            "provider": provider, "credentials": credentials, "connection_config": connection_config,
            "client_id": client_id, "client_secret": client_secret, "scopes": scopes,
            "integration_config": integration_config or {}})
        if status != 200:
            raise error_from(status, body)
        return body["credentials"]
