"""The store and auth as the dashboard uses them: the environments it may act in, the public
routes called in one of them as `dashboard:<user>`, and its own records (sign-ins, reveals)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from common.identity import Identity
from common.internal import ServiceClient, ServiceUnavailable

ACTOR_HEADER = "X-Authport-Actor"


@dataclass(frozen=True)
class Answer:
    """A store answer: its status and decoded JSON body."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return f"The store answered status {self.status}."
        if error.get("message"):
            return str(error["message"])
        fields = [f"{'.'.join(str(p) for p in e.get('path') or []) or 'body'}: {e.get('message')}"
                  for e in error.get("errors") or [] if isinstance(e, dict)]
        return "; ".join(fields) or str(error.get("code") or f"status {self.status}")

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None


def path_of(*segments: str, **params: Any) -> str:
    """A route path from segments (each percent-encoded) and query parameters (None left out)."""
    path = "/" + "/".join(quote(str(s), safe="") for s in segments)
    query = {k: v for k, v in params.items() if v not in (None, "")}
    return path + (f"?{urlencode(query)}" if query else "")


class DashboardClient(ServiceClient):
    """A service's public routes, called in an environment as `dashboard:<user>`."""

    def act(self, identity: Identity, user: str, method: str, path: str, payload: Any = None) -> Answer:
        """Call a public route in `identity`'s environment as `dashboard:<user>`."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {ACTOR_HEADER: f"dashboard:{user}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self.request(method, path, body=body, headers=headers, identity=identity)
        try:
            decoded = json.loads(response.data) if response.data else None
        except ValueError:
            raise ServiceUnavailable("A service Authport depends on answered with an invalid response.") from None
        return Answer(response.status, decoded)


class DashboardStore(DashboardClient):
    def environments(self) -> list[tuple[str, Identity]]:
        status, body = self.call("GET", "/internal/dashboard/environments")
        if status != 200:
            raise ServiceUnavailable(f"store could not list the environments (status {status})")
        return [(row["name"], Identity.from_dict(row["identity"])) for row in body["data"]]

    def record(self, environment_id: int, event: str, user: str, *, success: bool = True,
               revealed: str | None = None) -> None:
        """Record a dashboard sign-in (or a failed one) or a secret revealed."""
        payload = {"environment_id": environment_id, "event": event, "user": user, "success": success}
        if revealed:
            payload["revealed"] = revealed
        status, _ = self.call("POST", "/internal/logs/dashboard", payload)
        if status != 201:
            raise ServiceUnavailable(f"store could not record the dashboard event (status {status})")
