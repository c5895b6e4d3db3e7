"""Who acts in the current request, and its request id: what every log record names.

An actor is `key:<name>` (a secret key, by its name), `public_key:<name>`, `connect_session:<id>`,
`dashboard:<user>` (the dashboard's internal route), `admin` (the operator CLI) or `system`
(the store itself: refreshes, the purge job). Never a key itself.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

from flask import g, has_request_context, request

from common.identity import Identity
from services.store import operations
from services.store.models import ApiKey, Operation

ADMIN = "admin"
SYSTEM = "system"
# Who acts for the dashboard: sent by it in ACTOR_HEADER. Every store route requires the internal
# key, and the gateway drops X-Authport-* headers from the public, so only a sibling can name one.
ACTOR_HEADER = "X-Authport-Actor"
DASHBOARD_ACTOR = re.compile(r"^dashboard:[A-Za-z0-9@._:+-]{1,128}$")
# A caller's X-Request-Id is kept only when it is a plain token: it lands in records and logs.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NAME_LIFETIME = 60.0  # seconds a key's name is cached (names change only when a pinned key takes "default")

_names: dict[int, tuple[float, str]] = {}
_names_guard = threading.Lock()


def request_id() -> str | None:
    """The request id of the current request (the caller's, if well-formed; else one made now)."""
    if not has_request_context():
        return None
    chosen = getattr(g, "log_request_id", None)
    if chosen is None:
        given = getattr(g, "request_id", None) or ""
        chosen = g.log_request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return chosen


def key_name(key_id: int) -> str:
    """The name of API key `key_id` (cached; one primary-key read a minute per key at most)."""
    now = time.monotonic()
    cached = _names.get(key_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = ApiKey.select(ApiKey.name).where(ApiKey.id == key_id).first()
    name = row.name if row is not None else f"#{key_id}"
    with _names_guard:
        _names[key_id] = (now + NAME_LIFETIME, name)
    return name


def actor_of(key_kind: str | None, key_id: int | None) -> str:
    if key_kind == "secret" and key_id == 0:  # the dashboard's identity (services/store/dashboard_views.py)
        return "dashboard"
    if key_kind == "secret" and key_id is not None:
        return f"key:{key_name(key_id)}"
    if key_kind == "public" and key_id is not None:
        return f"public_key:{key_name(key_id)}"
    if key_kind == "connect_session" and key_id is not None:
        return f"connect_session:{key_id}"
    return SYSTEM


def current() -> tuple[str | None, int | None]:
    """(key kind, key id) of the current request's caller, or (None, None)."""
    identity: Identity | None = getattr(g, "identity", None) if has_request_context() else None
    return (identity.key_kind, identity.key_id) if identity is not None else (None, None)


def current_actor() -> str:
    named = request.headers.get(ACTOR_HEADER) if has_request_context() else None
    if named and DASHBOARD_ACTOR.fullmatch(named):
        return named
    return actor_of(*current())


def record(kind: str, **fields) -> Operation:
    """Write a record of the current request's caller in its environment now (see operations.record)."""
    identity: Identity = g.identity
    return operations.record(identity.environment_id, kind, actor=current_actor(), request_id=request_id(), **fields)


def connection_event(event: str, provider_config_key: str, connection_id: str, **fields) -> Operation:
    """`connection.<event>` by the current request's caller (see operations.record_connection_event)."""
    return operations.record_connection_event(g.identity.environment_id, event, provider_config_key, connection_id,
                                              actor=current_actor(), request_id=request_id(), **fields)
