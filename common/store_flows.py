"""The store's internal routes that the auth service calls while it runs a flow."""

from __future__ import annotations

from typing import Any

from common.internal import ServiceClient, error_from


class FlowStore(ServiceClient):
    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        status, body = self.call(method, path, payload)
        if status >= 400:
            raise error_from(status, body)
        return body

    def create_connect_session(self, environment_id: int, session: dict) -> dict:
        return self._call("POST", "/internal/connect-sessions", {**session, "environment_id": environment_id})

    def connect_session(self, session_id: int) -> dict:
        return self._call("GET", f"/internal/connect-sessions/{int(session_id)}")

    def delete_connect_session(self, session_id: int) -> None:
        self._call("DELETE", f"/internal/connect-sessions/{int(session_id)}")

    def start_flow(self, environment_id: int, provider_config_key: str, session_id: int | None,
                   public: dict | None = None) -> dict:
        """{integration: {unique_key, provider, client_id, client_secret, scopes, …}, session: {…} | None,
        may_overwrite}; `public` ({connection_id, hmac}) for a flow started with the public key."""
        return self._call("POST", "/internal/flows/start", {
            "environment_id": environment_id, "provider_config_key": provider_config_key,
            "connect_session_id": session_id, "public": public})

    def create_oauth_session(self, session: dict) -> None:
        self._call("POST", "/internal/oauth-sessions", session)

    def consume_oauth_session(self, state: str) -> dict:
        return self._call("POST", "/internal/oauth-sessions/consume", {"state": state})

    def save_connection(self, capture: dict) -> dict:
        """Create or override the connection a flow captured; returns what the webhook reports."""
        return self._call("POST", "/internal/flows/connections", capture)
