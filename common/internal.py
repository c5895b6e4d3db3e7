"""Small typed clients one Authport process uses to call another over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from common.access_log import CURRENT as CURRENT_REQUEST_ID
from common.errors import ApiError
from common.identity import INTERNAL_KEY_HEADER, Identity

log = logging.getLogger("authport.internal")
UNREACHABLE = "A service Authport depends on is unreachable; please try again shortly."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


class ServiceClient:
    """A pooled HTTP client bound to one internal service, carrying the internal secret."""

    def __init__(self, base_url: str, internal_key: str, *, timeout: float = 30.0, maxsize: int = 64):
        self.base_url = base_url.rstrip("/")
        self.path_prefix = urlsplit(self.base_url).path  # a service mounted below a path (STORE_URL=…/store)
        self.internal_key = internal_key
        # One pool for the one service (no per-call URL parsing and pool lookup, as a PoolManager does).
        self.pool = urllib3.connection_from_url(
            self.base_url, maxsize=maxsize, block=False, retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        identity: Identity | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        all_headers = dict(headers or {})
        all_headers[INTERNAL_KEY_HEADER] = self.internal_key
        request_id = CURRENT_REQUEST_ID.get()
        if request_id is not None and not any(name.lower() == "x-request-id" for name in all_headers):
            all_headers["X-Request-Id"] = request_id  # the caller's request, followed across processes
        if identity is not None:
            all_headers.update(identity.to_headers())
        try:
            return self.pool.urlopen(method, self.path_prefix + path, body=body, headers=all_headers,
                                     preload_content=not stream, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            # The caller may be the public: the answer says what failed, the log says where.
            log.warning("internal service %s unreachable: %s %s", self.base_url, type(exc).__name__, exc)
            raise ServiceUnavailable(UNREACHABLE) from exc

    def call(self, method: str, path: str, payload: Any = None, identity: Identity | None = None) -> tuple[int, Any]:
        """Send JSON, return (status, decoded JSON body or None)."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = self.request(method, path, body=body, headers=headers, identity=identity)
        data = response.data
        try:
            return response.status, (json.loads(data) if data else None)
        except ValueError:
            log.warning("internal service %s answered %s with a body that is not JSON", self.base_url, response.status)
            raise ServiceUnavailable("A service Authport depends on answered with an invalid response.") from None


class StoreClient(ServiceClient):
    """Calls of the store's internal API."""

    def resolve_key(self, secret: str, kind: str = "secret") -> Identity | None:
        status, body = self.call("POST", "/internal/keys/resolve", {"key": secret, "kind": kind})
        if status == 404:
            return None
        if status != 200:
            raise ServiceUnavailable(f"store could not resolve the key (status {status})")
        return Identity.from_dict(body["identity"])

    def resolve_connect_session(self, token: str) -> Identity | None:
        """The identity of a live connect session token (key_kind "connect_session"), or None."""
        status, body = self.call("POST", "/internal/connect-sessions/resolve", {"token": token})
        if status == 404:
            return None
        if status != 200:
            raise ServiceUnavailable(f"store could not resolve the session token (status {status})")
        return Identity.from_dict(body["identity"])

    def connection_credentials(self, identity: Identity, provider_config_key: str, connection_id: str, *,
                               force_refresh: bool = False) -> dict:
        """Credentials, connection config, auth mode and provider proxy settings of a live connection.

        Raises the store's own error (400 server_error for a missing connection, 404
        unknown_provider_config for a missing integration) so the caller can pass it on.
        """
        query = urlencode({"provider_config_key": provider_config_key, "connection_id": connection_id,
                           "force_refresh": "true" if force_refresh else "false"})
        status, body = self.call("GET", f"/internal/connections/credentials?{query}", identity=identity)
        if status == 200:
            return body["connection"]
        raise error_from(status, body)

    def record_operations(self, records: list[dict]) -> int:
        """Store a batch of proxied calls' operation records, all or none; return how many.

        Raises the store's error: 400 for a batch it refuses (nothing stored, sending it again
        cannot help), 503 ServiceUnavailable when the store cannot be reached.
        """
        status, body = self.call("POST", "/internal/operations", {"operations": records})
        if status == 200:
            return body["recorded"]
        raise error_from(status, body)


def error_from(status: int, body: Any) -> ApiError:
    """The error a service answered with, as an ApiError to raise again towards the caller."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or status < 400:
        return ServiceUnavailable(f"The internal service answered status {status} without an error body")
    return ApiError(error.get("message"), code=error.get("code") or "server_error", status=status,
                    errors=error.get("errors"), payload=error.get("payload"))
