"""Records to the JSON shapes of Nango's public API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(value: datetime | None, suffix: str = "Z") -> str | None:
    """ISO-8601 with milliseconds; `suffix` "Z" (Nango's server answers "+00:00" on some reads and "Z"
    on writes; Authport answers every route alike, "Z", which every ISO-8601 parser reads the same)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + suffix


def strip_refresh_tokens(value: Any) -> Any:
    """Drop, at any depth, every key that reads 'refresh token' once non-letters are removed."""
    if isinstance(value, dict):
        return {k: strip_refresh_tokens(v) for k, v in value.items()
                if "".join(c for c in k.lower() if c.isalpha()) != "refreshtoken"}
    if isinstance(value, list):
        return [strip_refresh_tokens(v) for v in value]
    return value


def end_user(data: dict | None) -> dict | None:
    if not data:
        return None
    org = data.get("organization")
    return {
        "id": data["id"],
        "display_name": data.get("display_name"),
        "email": data.get("email"),
        "tags": data.get("tags"),
        "organization": {"id": org["id"], "display_name": org.get("display_name")} if org else None,
    }


def connection_errors(conn) -> list[dict]:
    if conn.last_refresh_failure and (not conn.last_refresh_success
                                      or conn.last_refresh_failure > conn.last_refresh_success):
        return [{"type": "auth", "log_id": f"refresh-{conn.uid[:8]}"}]
    return []


def _connection_common(conn, provider_config_key: str, provider: str) -> dict:
    return {
        "id": conn.id,
        "connection_id": conn.connection_id,
        "provider_config_key": provider_config_key,
        "provider": provider,
        "errors": connection_errors(conn),
        "end_user": end_user(conn.end_user),
        "tags": conn.tags or {},
        "metadata": conn.metadata if conn.metadata is not None else {},
    }


def connection_item(conn, provider_config_key: str, provider: str) -> dict:
    """A connection as `GET /connections` lists it (no credentials)."""
    return {**_connection_common(conn, provider_config_key, provider), "created": iso(conn.created_at)}


def connection_full(conn, provider_config_key: str, provider: str, credentials: dict, suffix: str) -> dict:
    """A connection with its credentials, as import and get return it."""
    return {
        **_connection_common(conn, provider_config_key, provider),
        "connection_config": conn.connection_config or {},
        "webhook_url_override": conn.webhook_url_override,
        "created_at": iso(conn.created_at, suffix),
        "updated_at": iso(conn.updated_at, suffix),
        "last_fetched_at": iso(conn.last_fetched_at, suffix),
        "credentials": credentials,
    }


def integration(record, provider_entry: dict | None, server_url: str, *, webhook: bool = False,
                credentials: dict | None | bool = False) -> dict:
    out: dict[str, Any] = {
        "unique_key": record.unique_key,
        "provider": record.provider,
        "display_name": record.display_name or (provider_entry or {}).get("display_name") or record.provider,
        "logo": logo_url(server_url, record.provider),
    }
    if webhook:
        out["webhook_url"] = None
    if credentials is not False:
        out["credentials"] = credentials
    out.update({
        "forward_webhooks": bool(record.forward_webhooks),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    })
    return out


def logo_url(server_url: str, provider: str) -> str:
    return f"{server_url}/images/template-logos/{provider}.svg"


def provider(name: str, entry: dict, server_url: str) -> dict:
    return {**entry, "name": name, "logo_url": logo_url(server_url, name)}
