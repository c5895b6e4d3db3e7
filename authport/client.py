"""A Python client of Authport's public API, sync (`Authport`) and async (`AsyncAuthport`), on httpx.

    from authport.client import Authport, errors

    with Authport("http://localhost:3003", secret_key) as api:
        api.create_integration("github-prod", "github", client_id="…", client_secret="…")
        session = api.create_connect_session({"id": "user-1"}, allowed_integrations=["github-prod"])
        try:
            token = api.get_connection("github-prod", "conn-1")["credentials"]["access_token"]
        except errors.UnknownConnection:
            ...

Every method answers the JSON the API answers, without Nango's `{"data": …}` envelope. An error
answer raises `AuthportError`, as the subclass of its code (`errors.UnknownConnection` for
`unknown_connection`, `errors.for_code("…")` for any code), which is also a subclass of its status's
class (`NotFound`, `RateLimited`, …). A 429 or 503 with `Retry-After` is retried after that many
seconds (at most `max_wait` each, `max_retries` times) before it raises; the last rate-limit headers
are in `api.rate_limit`. The async client has the same methods, each to be awaited.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from authport import errors
from authport.errors import AuthportError

__all__ = ["AsyncAuthport", "Authport", "AuthportError", "RateLimit", "errors"]

RETRIED = (429, 503)


@dataclass(frozen=True)
class RateLimit:
    """The rate-limit headers of the last answer that had them."""
    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None


@dataclass(frozen=True)
class Call:
    """One API request, as the sync and async clients both send it."""
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    unwrap: bool = True  # answer body["data"] when the API wraps it


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


class _Api:
    """The routes, once: each method describes its request; `_send` (sync or async) sends it."""

    def _send(self, call: Call) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- integrations ---------------------------------------------------------------------------
    def list_integrations(self) -> Any:
        return self._send(Call("GET", "/integrations"))

    def get_integration(self, unique_key: str, *, include_credentials: bool = False) -> Any:
        return self._send(Call("GET", f"/integrations/{_segment(unique_key)}",
                               _params(include="credentials" if include_credentials else None)))

    def create_integration(self, unique_key: str, provider: str, *, client_id: str | None = None,
                           client_secret: str | None = None, scopes: str | None = None,
                           display_name: str | None = None, **extra: Any) -> Any:
        body: dict[str, Any] = {"unique_key": unique_key, "provider": provider, **extra}
        if display_name is not None:
            body["display_name"] = display_name
        if client_id is not None or client_secret is not None:
            body["credentials"] = {"type": "OAUTH2", "client_id": client_id, "client_secret": client_secret,
                                   **({"scopes": scopes} if scopes is not None else {})}
        return self._send(Call("POST", "/integrations", body=body))

    def update_integration(self, unique_key: str, **fields: Any) -> Any:
        return self._send(Call("PATCH", f"/integrations/{_segment(unique_key)}", body=fields))

    def delete_integration(self, unique_key: str) -> Any:
        return self._send(Call("DELETE", f"/integrations/{_segment(unique_key)}"))

    # --- providers --------------------------------------------------------------------------------
    def list_providers(self, *, search: str | None = None) -> Any:
        return self._send(Call("GET", "/providers", _params(search=search)))

    def get_provider(self, name: str) -> Any:
        return self._send(Call("GET", f"/providers/{_segment(name)}"))

    # --- connections ------------------------------------------------------------------------------
    def list_connections(self, *, connection_id: str | None = None, search: str | None = None,
                         end_user_id: str | None = None, limit: int | None = None, page: int | None = None) -> Any:
        answer = self._send(Call("GET", "/connections", _params(connectionId=connection_id, search=search,
                                                                  endUserId=end_user_id, limit=limit, page=page),
                                 unwrap=False))
        return _then(answer, lambda body: body["connections"])

    def get_connection(self, provider_config_key: str, connection_id: str, *, force_refresh: bool = False,
                       refresh_token: bool = False) -> Any:
        return self._send(Call("GET", f"/connections/{_segment(connection_id)}", _params(
            provider_config_key=provider_config_key, force_refresh=force_refresh or None,
            refresh_token=refresh_token or None), unwrap=False))

    def get_token(self, provider_config_key: str, connection_id: str) -> Any:
        """The access token (OAuth 2), API key or the whole credentials object, as Nango's getToken."""
        answer = self.get_connection(provider_config_key, connection_id)
        return _then(answer, lambda body: _token(body.get("credentials") or {}))

    def import_connection(self, provider_config_key: str, connection_id: str, credentials: Mapping[str, Any],
                          **extra: Any) -> Any:
        body = {"provider_config_key": provider_config_key, "connection_id": connection_id,
                "credentials": dict(credentials), **extra}
        return self._send(Call("POST", "/connections", body=body, unwrap=False))

    def update_connection(self, provider_config_key: str, connection_id: str, **fields: Any) -> Any:
        return self._send(Call("PATCH", f"/connections/{_segment(connection_id)}",
                               _params(provider_config_key=provider_config_key), body=fields, unwrap=False))

    def delete_connection(self, provider_config_key: str, connection_id: str) -> Any:
        return self._send(Call("DELETE", f"/connections/{_segment(connection_id)}",
                               _params(provider_config_key=provider_config_key), unwrap=False))

    def restore_connection(self, provider_config_key: str, connection_id: str) -> Any:
        return self._send(Call("POST", f"/connections/{_segment(connection_id)}/restore",
                               _params(provider_config_key=provider_config_key)))

    def purge_connection(self, provider_config_key: str, connection_id: str) -> Any:
        return self._send(Call("POST", f"/connections/{_segment(connection_id)}/purge",
                               _params(provider_config_key=provider_config_key)))

    def purge_end_user(self, end_user_id: str) -> Any:
        return self._send(Call("POST", "/connections/purge", body={"end_user_id": end_user_id}))

    # --- metadata ---------------------------------------------------------------------------------
    def set_metadata(self, provider_config_key: str, connection_id: str | list[str],
                     metadata: Mapping[str, Any]) -> Any:
        """Replace the metadata (of one connection or several)."""
        return self._send(Call("POST", "/connections/metadata", body={
            "provider_config_key": provider_config_key, "connection_id": connection_id,
            "metadata": dict(metadata)}, unwrap=False))

    def update_metadata(self, provider_config_key: str, connection_id: str | list[str],
                        metadata: Mapping[str, Any]) -> Any:
        """Merge into the metadata (of one connection or several)."""
        return self._send(Call("PATCH", "/connections/metadata", body={
            "provider_config_key": provider_config_key, "connection_id": connection_id,
            "metadata": dict(metadata)}, unwrap=False))

    # --- connect sessions -------------------------------------------------------------------------
    def create_connect_session(self, end_user: Mapping[str, Any], *, allowed_integrations: list[str] | None = None,
                               **extra: Any) -> Any:
        body: dict[str, Any] = {"end_user": dict(end_user), **extra}
        if allowed_integrations is not None:
            body["allowed_integrations"] = allowed_integrations
        return self._send(Call("POST", "/connect/sessions", body=body))

    def create_reconnect_session(self, connection_id: str, integration_id: str, **extra: Any) -> Any:
        return self._send(Call("POST", "/connect/sessions/reconnect", body={
            "connection_id": connection_id, "integration_id": integration_id, **extra}))

    def get_connect_session(self, session_token: str) -> Any:
        """The session a connect session token names (the token is the credential of this call)."""
        return self._send(Call("GET", "/connect/session", headers={"Authorization": f"Bearer {session_token}"}))

    def delete_connect_session(self, session_token: str) -> Any:
        return self._send(Call("DELETE", "/connect/session", headers={"Authorization": f"Bearer {session_token}"},
                               unwrap=False))

    # --- environment --------------------------------------------------------------------------------
    def list_environment_variables(self) -> Any:
        return self._send(Call("GET", "/environment-variables", unwrap=False))

    def get_webhook_url(self) -> Any:
        return _then(self._send(Call("GET", "/environment/webhook")), lambda data: data["url"])

    def set_webhook_url(self, url: str | None) -> Any:
        return _then(self._send(Call("PATCH", "/environment/webhook", body={"url": url})), lambda data: data["url"])

    def list_keys(self) -> Any:
        return self._send(Call("GET", "/environment/keys"))

    def create_key(self, name: str) -> Any:
        """A new named secret key; its value is in the answer, and only there."""
        return self._send(Call("POST", "/environment/keys", body={"name": name}))

    def rotate_key(self, name: str) -> Any:
        return self._send(Call("POST", f"/environment/keys/{_segment(name)}/rotate"))

    def revoke_key(self, name: str) -> Any:
        return self._send(Call("DELETE", f"/environment/keys/{_segment(name)}", unwrap=False))

    def rotate_public_key(self) -> Any:
        return self._send(Call("POST", "/environment/public-key/rotate"))

    # --- logs -----------------------------------------------------------------------------------------
    def list_logs(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        """One page: {"data": [records, newest first], "next_cursor": …}."""
        return self._send(Call("GET", "/logs", _params(limit=limit, cursor=cursor, **filters), unwrap=False))

    def get_log(self, record_id: int) -> Any:
        return self._send(Call("GET", f"/logs/{int(record_id)}"))


def _token(credentials: Mapping[str, Any]) -> Any:
    kind = credentials.get("type")
    if kind in ("OAUTH2", "APP", "OAUTH2_CC"):
        return credentials.get("access_token") or credentials.get("token")
    if kind == "API_KEY":
        return credentials.get("apiKey")
    return dict(credentials)


def _then(answer: Any, pick):
    """Apply `pick` to an answer, or to what an awaitable answer resolves to (the async client)."""
    if asyncio.iscoroutine(answer):
        async def picked():
            return pick(await answer)
        return picked()
    return pick(answer)


def _rate_limit(headers: httpx.Headers, last: RateLimit) -> RateLimit:
    if "X-RateLimit-Limit" not in headers:
        return last

    def number(name: str) -> int | None:
        try:
            return int(headers[name])
        except (KeyError, ValueError):
            return None
    return RateLimit(number("X-RateLimit-Limit"), number("X-RateLimit-Remaining"), number("X-RateLimit-Reset"))


def _retry_after(response: httpx.Response, max_wait: float) -> float | None:
    """Seconds to wait before trying again, or None when the answer is not one to retry."""
    if response.status_code not in RETRIED:
        return None
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    return min(max(seconds, 0.0), max_wait)


def _answer(response: httpx.Response, call: Call) -> Any:
    if response.status_code >= 400:
        raise errors.from_response(response.status_code, response.content, response.headers)
    if response.status_code == 204 or not response.content:
        return None
    body = response.json()
    if call.unwrap and isinstance(body, dict) and set(body) == {"data"}:
        return body["data"]
    return body


def _proxy_headers(provider_config_key: str, connection_id: str, headers: Mapping[str, str] | None,
                   retries: int | None, base_url_override: str | None) -> dict[str, str]:
    sent = {"Provider-Config-Key": provider_config_key, "Connection-Id": connection_id}
    for name, value in (headers or {}).items():
        sent[f"Nango-Proxy-{name}"] = value
    if retries is not None:
        sent["Retries"] = str(retries)
    if base_url_override is not None:
        sent["Base-Url-Override"] = base_url_override
    return sent


def _proxy_path(endpoint: str) -> str:
    return "/proxy" + (endpoint if endpoint.startswith("/") else "/" + endpoint)


class Authport(_Api):
    """The sync client. `secret_key`: an environment's secret key (the environment is the key's)."""

    def __init__(self, base_url: str, secret_key: str, *, timeout: float = 30.0, max_retries: int = 2,
                 max_wait: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {secret_key}"}, trust_env=False)
        self.max_retries, self.max_wait = max_retries, max_wait
        self.rate_limit = RateLimit()

    def __enter__(self) -> Authport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = self.http.request(method, path, **kwargs)
            self.rate_limit = _rate_limit(response.headers, self.rate_limit)
            wait = _retry_after(response, self.max_wait)
            if wait is None or attempt == self.max_retries:
                return response
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _send(self, call: Call) -> Any:
        headers = {**call.headers, **({"Content-Type": "application/json"} if call.body is not None else {})}
        response = self._request(call.method, call.path, params=call.params, headers=headers,
                                 content=None if call.body is None else json.dumps(call.body).encode())
        return _answer(response, call)

    def proxy(self, method: str, endpoint: str, provider_config_key: str, connection_id: str, *,
              params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
              json_body: Any = None, content: bytes | None = None, retries: int | None = None,
              base_url_override: str | None = None) -> httpx.Response:
        """A proxied call; answers the provider's response (its status is the provider's: no raise
        unless Authport itself refused, e.g. an unknown connection)."""
        sent = _proxy_headers(provider_config_key, connection_id, headers, retries, base_url_override)
        response = self._request(method, _proxy_path(endpoint), params=params, headers=sent, json=json_body,
                                 content=content)
        errors.raise_for_authport(response.status_code, response.content, response.headers)
        return response

    @contextmanager
    def stream_proxy(self, method: str, endpoint: str, provider_config_key: str, connection_id: str, *,
                     headers: Mapping[str, str] | None = None, content: Any = None,
                     params: Mapping[str, Any] | None = None) -> Iterator[httpx.Response]:
        """A proxied call whose request (an iterable of bytes) and answer (`iter_bytes()`) stream."""
        sent = _proxy_headers(provider_config_key, connection_id, headers, None, None)
        with self.http.stream(method, _proxy_path(endpoint), params=params, headers=sent, content=content) as answer:
            if answer.status_code >= 400 and errors.is_authport_refusal(answer.headers):
                answer.read()
                errors.raise_for_authport(answer.status_code, answer.content, answer.headers)
            yield answer

    def iter_logs(self, **filters: Any) -> Iterator[dict]:
        """Every matching record, newest first, page after page."""
        cursor = None
        while True:
            page = self.list_logs(cursor=cursor, **filters)
            yield from page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def export_logs(self, start: str, end: str, **filters: Any) -> Iterator[dict]:
        """The NDJSON export of a time range (ISO 8601 bounds), oldest first, streamed."""
        with self.http.stream("GET", "/logs/export", params=_params(**{"from": start, "to": end}, **filters)) as got:
            if got.status_code >= 400:
                got.read()
                raise errors.from_response(got.status_code, got.content, got.headers)
            for line in got.iter_lines():
                if line:
                    yield json.loads(line)


class AsyncAuthport(_Api):
    """The async client: the same methods as `Authport`, each to be awaited."""

    def __init__(self, base_url: str, secret_key: str, *, timeout: float = 30.0, max_retries: int = 2,
                 max_wait: float = 60.0, transport: httpx.AsyncBaseTransport | None = None):
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                      headers={"Authorization": f"Bearer {secret_key}"}, trust_env=False)
        self.max_retries, self.max_wait = max_retries, max_wait
        self.rate_limit = RateLimit()

    async def __aenter__(self) -> AsyncAuthport:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = await self.http.request(method, path, **kwargs)
            self.rate_limit = _rate_limit(response.headers, self.rate_limit)
            wait = _retry_after(response, self.max_wait)
            if wait is None or attempt == self.max_retries:
                return response
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _send(self, call: Call) -> Any:
        headers = {**call.headers, **({"Content-Type": "application/json"} if call.body is not None else {})}
        response = await self._request(call.method, call.path, params=call.params, headers=headers,
                                       content=None if call.body is None else json.dumps(call.body).encode())
        return _answer(response, call)

    async def proxy(self, method: str, endpoint: str, provider_config_key: str, connection_id: str, *,
                    params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                    json_body: Any = None, content: bytes | None = None, retries: int | None = None,
                    base_url_override: str | None = None) -> httpx.Response:
        sent = _proxy_headers(provider_config_key, connection_id, headers, retries, base_url_override)
        response = await self._request(method, _proxy_path(endpoint), params=params, headers=sent, json=json_body,
                                       content=content)
        errors.raise_for_authport(response.status_code, response.content, response.headers)
        return response

    @asynccontextmanager
    async def stream_proxy(self, method: str, endpoint: str, provider_config_key: str, connection_id: str, *,
                           headers: Mapping[str, str] | None = None, content: Any = None,
                           params: Mapping[str, Any] | None = None) -> AsyncIterator[httpx.Response]:
        sent = _proxy_headers(provider_config_key, connection_id, headers, None, None)
        async with self.http.stream(method, _proxy_path(endpoint), params=params, headers=sent,
                                    content=content) as answer:
            if answer.status_code >= 400 and errors.is_authport_refusal(answer.headers):
                await answer.aread()
                errors.raise_for_authport(answer.status_code, answer.content, answer.headers)
            yield answer

    async def iter_logs(self, **filters: Any) -> AsyncIterator[dict]:
        cursor = None
        while True:
            page = await self.list_logs(cursor=cursor, **filters)
            for record in page["data"]:
                yield record
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def export_logs(self, start: str, end: str, **filters: Any) -> AsyncIterator[dict]:
        async with self.http.stream("GET", "/logs/export",
                                    params=_params(**{"from": start, "to": end}, **filters)) as got:
            if got.status_code >= 400:
                await got.aread()
                raise errors.from_response(got.status_code, got.content, got.headers)
            async for line in got.aiter_lines():
                if line:
                    yield json.loads(line)
