"""What the proxy needs to call a provider for one connection: its credentials, its connection
config and the provider's proxy settings. Credentials leave the store only this way, decrypted,
over the internal network to the proxy. For an OAUTH1 or TBA connection the answer also carries what
signs its requests (`oauth1`): the integration's client id and secret (consumer key and secret) and
the provider's signature method."""

from __future__ import annotations

from common.errors import ApiError
from services.store import live, refresh
from services.store.context import StoreContext
from services.store.models import Integration


def missing_connection() -> ApiError:
    # What Nango answers when the proxy is given an unknown or deleted connection (transcript B12).
    return ApiError("Failed to get connection", code="server_error", status=400)


def oauth1_consumer(ctx: StoreContext, integration: Integration, provider: dict) -> dict:
    """The integration's consumer key and secret and the provider's signature method."""
    record = Integration.get_by_id(integration.id)  # the hot path's row has no client id or secret
    secret = record.unseal(ctx.cipher, "client_secret_enc")
    return {"consumer_key": record.client_id, "consumer_secret": secret,
            "signature_method": provider.get("signature_method")}


def for_outbound_call(ctx: StoreContext, env_id: int, provider_config_key: str, connection_id: str, *,
                      force_refresh: bool = False) -> dict:
    """The live connection's credentials and config with its provider's auth mode and proxy settings."""
    def not_found(integration_exists: bool) -> ApiError:
        if integration_exists:
            return missing_connection()
        return ApiError("Provider does not exists", code="unknown_provider_config", status=404)

    # A retry after the provider's 401 (force): that 401 answers the caller, not a failed refresh.
    found = live.read(ctx, env_id, provider_config_key, connection_id, not_found=not_found, force=force_refresh,
                      keep_on_forced_failure=True)
    conn, integration, credentials, refreshed = found.conn, found.integration, found.credentials, found.refreshed
    provider = ctx.catalogue.get(integration.provider) or {}
    auth_mode = provider.get("auth_mode", conn.credentials_type)
    answer = {
        "connection_id": conn.connection_id,
        "provider_config_key": integration.unique_key,
        "provider": integration.provider,
        "auth_mode": auth_mode,
        "credentials": credentials,
        "connection_config": conn.connection_config or {},
        "proxy": provider.get("proxy") or {},
        "connection_config_schema": provider.get("connection_config") or {},
        "refreshed": refreshed,
        # The proxy's cache (services/proxy/credentials.py) asks again before this many seconds.
        "fresh_for": refresh.seconds_fresh(conn, provider),
    }
    if auth_mode in ("OAUTH1", "TBA"):
        answer["oauth1"] = oauth1_consumer(ctx, integration, provider)
    if auth_mode == "AWS_SIGV4":  # the service and default region may be the integration's
        config = Integration.get_by_id(integration.id).integration_config or {}
        answer["integration_config"] = {k: config[k] for k in ("service", "defaultRegion") if k in config}
    return answer
