"""The live read of a connection's credentials: the one path behind `GET /connections/:id` and the
proxy's outbound calls. Fetch (recording the read), check the integration, decrypt, and refresh
first when the token expires within the provider's buffer or the caller forces it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.errors import ApiError
from services.store import credentials, hotpath, refresh
from services.store import integrations as integrations_domain
from services.store.context import StoreContext
from services.store.models import Connection, Integration


@dataclass
class LiveRead:
    conn: Connection
    integration: Integration
    credentials: dict
    refreshed: bool  # the credentials were refreshed by this read


def read(ctx: StoreContext, env_id: int, provider_config_key: str, connection_id: str, *,
         not_found: Callable[[bool], ApiError], force: bool = False, keep_on_forced_failure: bool = False) -> LiveRead:
    """The live connection with fresh credentials; `not_found(integration_exists)` is raised when
    there is no such live connection. With `keep_on_forced_failure`, a forced refresh that fails
    leaves the stored credentials in use (the provider's own 401 answers the caller then)."""
    found = hotpath.touch_and_fetch(env_id, provider_config_key, connection_id)
    if found is None:
        raise not_found(integrations_domain.find(env_id, provider_config_key) is not None)
    conn, integration = found
    stored = credentials.of(ctx, conn)
    try:
        current, fresh = refresh.ensure_fresh(ctx, conn, integration, stored, force=force)
    except ApiError:
        if force and keep_on_forced_failure:
            return LiveRead(conn, integration, stored, False)
        raise
    return LiveRead(current, integration, fresh, fresh is not stored)
